"""Build the stores in ``legacy_stores/`` with the code of an older weightwidget.

They were made with the code on main before fingerprints recorded their method
and before the base files carried a JSON layout (commit a31eff5):

    PYTHONPATH=<checkout of a31eff5> python tests/data/make_legacy_stores.py

``text2/`` was made by fingerprint method 2 (commit 49d58ee), when every text
column was dictionary-encoded, mostly-distinct ones too:

    PYTHONPATH=<checkout of 49d58ee> python tests/data/make_legacy_stores.py text2

``tests/test_ingest.py`` opens them with today's code and rebuilds the same data
with :func:`legacy_frame` / :func:`legacy_arrays` to check that it is reused.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent / "legacy_stores"


def legacy_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 60
    captions = np.array([f"photo {i % 17} of a {'cat' if i % 3 else 'dog'}" for i in range(n)])
    captions_obj = captions.astype(object)
    captions_obj[5] = None  # a missing caption
    return pd.DataFrame(
        {
            "label": np.array(["cat", "dog", "bird"])[rng.integers(0, 3, n)],
            "score": rng.random(n).astype(np.float32),
            "loss": rng.gamma(2.0, 1.0, n),
            "caption": pd.Series(captions_obj, dtype=object),
            "note": pd.Series(captions),  # pandas' default string dtype
            "flagged": rng.random(n) < 0.2,
            "count": rng.integers(0, 5, n),
        }
    )


def legacy_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    n = 12
    return {
        "labels": rng.integers(0, 4, n),
        "a,b": rng.integers(0, 255, (n, 4, 4), dtype=np.uint8),  # a comma: unopenable then
        "tag": np.array([f"t{i % 3}" for i in range(n)]),
    }


def text2_frame() -> pd.DataFrame:
    """Mostly-distinct captions, a few words and text labels (``text2/``)."""
    n = 400
    rng = np.random.default_rng(11)
    caption = np.array(
        [f"photo {i * 7919 % 1009} of {'ab'[i % 2]}" for i in range(n)], dtype=object
    )
    caption[[3, 50]] = None
    return pd.DataFrame(
        {
            "label": pd.Series(
                np.array(["cat", "dog", "bird"])[rng.integers(0, 3, n)], dtype="str"
            ),
            "caption": pd.Series(caption, dtype="str"),  # mostly distinct
            "word": pd.Series([f"w{i % 4}" for i in range(n)], dtype="str"),  # 4 values
            "loss": rng.gamma(2.0, 1.0, n),
        }
    )


def text2() -> None:
    import weightwidget as ww

    shutil.rmtree(HERE / "text2", ignore_errors=True)
    t = ww.WeightTable.from_pandas(text2_frame(), label="label", store=HERE / "text2", name="t2")
    t.set_weights("caption contains 'of a'", 0.5, message="halve a")


def long_history() -> None:
    """A format-1 store with 100 revisions and full-size raw snapshots every 32 (the
    old policy), for the compaction tests: ``make_legacy_stores.py long``."""
    import weightwidget as ww

    shutil.rmtree(HERE / "long", ignore_errors=True)
    n = 3000
    t = ww.WeightTable.from_arrays(labels=np.arange(n) % 6, store=HERE / "long", name="long")
    rng = np.random.default_rng(9)
    for i in range(100):
        ids = np.sort(rng.choice(n, 20, replace=False))
        t.set_weights(ids, float(i % 5), message=f"edit {i}")
        if i == 50:
            t.scale_weights(None, 2.0, message="double all")
        if i == 70:
            t.undo()
    t.set_columns({"loss": rng.random(n)}, run="r1")


def main() -> None:
    import weightwidget as ww

    if sys.argv[1:] == ["long"]:
        long_history()
        return
    if sys.argv[1:] == ["text2"]:
        text2()
        return
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    t = ww.WeightTable.from_pandas(legacy_frame(), label="label", store=HERE / "frame", name="f")
    t.set_weights("label == 'dog'", 0.5, message="halve dogs")
    t.set_weights([1, 2, 3], 0.0, message="exclude three")
    t.set_columns({"metric": np.linspace(0, 1, len(t)), "verdict": ["ok"] * len(t)}, run="r1")
    cols = legacy_arrays()
    labels = cols.pop("labels")
    a = ww.WeightTable.from_arrays(labels=labels, store=HERE / "arrays", name="a", **cols)
    a.set_weights("label == 1", 2.0)
    print("made", t.revision, a.revision, file=sys.stderr)


if __name__ == "__main__":
    main()
