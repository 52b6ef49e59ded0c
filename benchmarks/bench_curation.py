"""Curation: ``ww.find_label_issues`` beside calling cleanlab directly, same run.

At 100,000 and 1,000,000 rows x 10 classes: ours is the whole call (checking
``pred_probs``, cleanlab's detection and quality scores, writing three
columns to the store and recording the run, the returned frame); the anchor
is what a user calling cleanlab directly runs to get the same information,
``cleanlab.filter.find_label_issues`` plus ``cleanlab.rank.
get_label_quality_scores``, both single-process (``n_jobs=1``, our default).
The ratio is our overhead. Target: under 10 s at 1,000,000 rows.

    python -m benchmarks curation          # both sizes (about a minute on 2 cores)
    python -m benchmarks curation --quick  # 100,000 rows only
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import weightwidget as ww

from ._common import print_table, row, timeit

K = 10
ANCHOR = "cleanlab find_label_issues + get_label_quality_scores"


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with 10% flipped and probabilities of a model that is right ~85% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, size=n)
    labels = truth.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = (truth[flip] + rng.integers(1, K, size=int(flip.sum()))) % K
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return labels, probs


def run(quick: bool = False) -> list[dict]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    rows = []
    sizes = [100_000] if quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            labels, probs = _data(n)
            t = ww.WeightTable.from_arrays(labels=labels, store=Path(tmp) / f"s{n}")
            repeat = 3 if n <= 100_000 else 2

            def ours(t=t, probs=probs) -> None:
                ww.find_label_issues(t, probs, run="bench")

            def direct(labels=labels, probs=probs) -> None:
                find_label_issues(labels, probs, n_jobs=1)
                get_label_quality_scores(labels, probs)

            anchor = timeit(direct, repeat=repeat)
            value = timeit(ours, repeat=repeat)
            target = "< 10 s" if n == 1_000_000 else "-"
            rows.append(
                row(
                    f"find_label_issues, {n:,} rows x {K} classes",
                    value,
                    "s",
                    target,
                    ANCHOR,
                    anchor,
                )
            )
            del t, labels, probs
    return rows


if __name__ == "__main__":
    import sys

    print_table(run(quick="--quick" in sys.argv), title="## curation")
