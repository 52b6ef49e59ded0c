"""Code the S3 tests run in other processes (started with ``spawn``: processes forked
after an async S3 client was used can hang).

Every worker talks to the store only through the public API, with credentials and
endpoint from the environment the test session set.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from typing import Any

import numpy as np

N_ROWS = 2000
#: Every commit of the writers doubles this row, so at revision r it holds 2**r.
SHARED = N_ROWS - 1


def context() -> Any:
    return mp.get_context("spawn")


def table_data(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"labels": rng.integers(0, 4, N_ROWS), "loss": rng.random(N_ROWS)}


def own_row(writer: int, k: int) -> int:
    return 1 + writer * 500 + k


def writer(url: str, who: int, edits: int, start: Any, out: Any) -> None:
    """Commit ``edits`` edits, each doubling its own row and the shared row."""
    try:
        import weightwidget as ww

        t = ww.WeightTable.open(url, session=f"writer-{who}", author=f"writer-{who}")
        start.wait(60)
        for k in range(edits):
            t.scale_weights([own_row(who, k), SHARED], 2.0, message=f"w{who} edit {k}")
        out.put(("done", who, t.revision))
    except BaseException:
        out.put(("error", who, traceback.format_exc()))


def reader(url: str, start: Any, stop: Any, out: Any) -> None:
    """Poll ``latest()`` while the writers run; report every state seen and the history."""
    try:
        import weightwidget as ww

        t = ww.WeightTable.open(url)
        start.wait(60)
        seen = []
        while not stop.is_set():
            t.latest()
            seen.append((t.revision, float(t.weights[SHARED])))
            time.sleep(0.002)
        t.latest()
        seen.append((t.revision, float(t.weights[SHARED])))
        history = t.history()
        every = [float(t.weights_at(r)[SHARED]) for r in history.revision]
        out.put(("done", seen, history.revision.tolist(), history.parent.tolist(), every))
    except BaseException:
        out.put(("error", traceback.format_exc()))


def endless_writer(url: str, committed: Any) -> None:
    """Double the shared row forever, recording each committed revision (shared memory)."""
    import weightwidget as ww

    t = ww.WeightTable.open(url)
    while True:
        committed.value = t.scale_weights([SHARED], 2.0)


def creator(url: str, seed: int, start: Any, out: Any) -> None:
    """Create the table at ``url`` from ``table_data(seed)`` at the same moment as others."""
    try:
        import weightwidget as ww

        data = table_data(seed)
        start.wait(60)
        t = ww.WeightTable.from_arrays(labels=data["labels"], store=url, loss=data["loss"])
        out.put(("ok", seed, t.revision, float(t.weights.sum()), len(t.history())))
    except BaseException as exc:
        out.put(("error", seed, type(exc).__name__, str(exc)))


def live_sampler(url: str, ready: Any, out: Any) -> None:
    """Draw epochs from a live sampler until class 0 stops being drawn."""
    try:
        import weightwidget as ww

        t = ww.WeightTable.open(url)
        labels = np.asarray(t.labels)
        sampler = t.create_sampler(num_samples=500, live=True, seed=0)
        deadline = time.monotonic() + 120
        epoch = 0
        while time.monotonic() < deadline:
            draws = np.fromiter(iter(sampler), dtype=np.int64)
            zero_drawn = bool((labels[draws] == 0).any())
            if epoch == 0:
                out.put(("ready", sampler.revision, zero_drawn))
                ready.set()
            elif not zero_drawn:
                out.put(("moved", sampler.revision, epoch))
                return
            epoch += 1
            time.sleep(0.01)
        out.put(("timeout", sampler.revision, epoch))
    except BaseException:
        out.put(("error", traceback.format_exc()))
