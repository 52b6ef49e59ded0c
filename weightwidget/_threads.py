"""Worker threads for numpy work that releases the GIL (the draws with replacement).

numpy releases the GIL inside its loops, so threads each running numpy on their
own slice of an array do run in parallel. The draws are bound by memory latency
(random gathers) rather than arithmetic, and each core waits on its own cache
misses: at 1e8 rows two cores nearly halve the lookups, and a thread drawing
ahead lets them overlap the Python loop that consumes the indices.

Threads live only as long as the work that needs them (no pool outlives an
epoch), so a process forked between epochs, as a ``DataLoader`` forks its
workers, inherits no idle threads. ``WEIGHTWIDGET_NUM_THREADS`` sets how many
threads may work at once (``1`` turns threading off); by default it is the
number of usable CPUs, at most 4.
"""

from __future__ import annotations

import itertools
import mmap
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["ENV", "Workers", "copy", "count", "zeros"]

ENV = "WEIGHTWIDGET_NUM_THREADS"
# Beyond this, more threads gain little: the draws are then bound by memory bandwidth.
_DEFAULT_MAX = 4
# Arrays from this size on are first written by several threads (see zeros()).
_PARALLEL_ZEROS_BYTES = 64 << 20


def count() -> int:
    """Return how many threads may work at once (``WEIGHTWIDGET_NUM_THREADS`` or the CPUs).

    Raises
    ------
    ValueError
        If ``WEIGHTWIDGET_NUM_THREADS`` is set to something other than a positive integer.
    """
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"{ENV}={env!r} is not a positive integer; set it to the number of threads "
                "weightwidget may use (1 turns threading off), or unset it"
            )
        return n
    try:
        cpus = len(os.sched_getaffinity(0))  # the CPUs this process may run on (Linux)
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(_DEFAULT_MAX, cpus))


def zeros(size: int, dtype: Any = float) -> np.ndarray:
    """Return a new 1-D array of zeros for large scratch work (mapped afresh, written by threads).

    Two costs of fresh memory dominate the first epoch at 1e8 rows, and this
    avoids both for arrays of 64 MB or more:

    - numpy advises the kernel to back large arrays with huge pages. Where
      ``/sys/kernel/mm/transparent_hugepage/defrag`` is ``madvise`` (the usual
      default), a page fault then compacts memory until it finds 2 MB free, and
      after other libraries (torch) have fragmented memory that took seconds:
      the 1e8 epoch ran in 8.8-9.4 s with ``NUMPY_MADVISE_HUGEPAGE=0`` and
      10.0-11.2 s without, the 1e7 epoch without replacement 1.06-1.13 s and
      1.47-1.58 s. These arrays are mapped directly (``mmap``), without that
      advice.
    - The first write of each page faults; ``count()`` threads take the faults
      at once: a ``cumsum`` writing 800 MB of fresh memory took 1.8-2.8 s, and
      zeroing the memory on two threads first and then the ``cumsum`` 1.0-1.4 s.

    Smaller arrays are plain ``np.zeros``.
    """
    dtype = np.dtype(dtype)
    nbytes = int(size) * dtype.itemsize
    if nbytes < _PARALLEL_ZEROS_BYTES:
        return np.zeros(size, dtype=dtype)
    out = np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype)  # freed with the last view
    parts = count()
    cuts = [out.size * i // parts for i in range(parts + 1)]
    with Workers(parts - 1) as workers:
        workers.run(_zero, [(out[a:b],) for a, b in itertools.pairwise(cuts)])
    return out


def copy(values: np.ndarray) -> np.ndarray:
    """Return a copy of the 1-D ``values`` in memory from :func:`zeros`."""
    out = zeros(values.size, dtype=values.dtype)
    np.copyto(out, values)
    return out


def _zero(part: np.ndarray) -> None:
    part.fill(0)


class Workers:
    """Helper threads for the life of a ``with`` block, to split calls among.

    Parameters
    ----------
    helpers : int
        Threads to start besides the calling one (0 runs everything in it).

    Examples
    --------
    >>> with Workers(1) as workers:  # doctest: +SKIP
    ...     workers.run(fill, [(part_a,), (part_b,)])
    """

    def __init__(self, helpers: int) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"weightwidget-worker-{i}", daemon=True)
            for i in range(helpers)
        ]

    def __enter__(self) -> Workers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None:
            fn, args = task
            try:
                fn(*args)
            except BaseException as error:  # handed to the caller of run()
                self._done.put(error)
            else:
                self._done.put(None)

    def run(self, fn: Callable[..., Any], calls: Sequence[tuple]) -> None:
        """Call ``fn(*args)`` for each ``args`` in ``calls`` at once; return when all are done.

        The calling thread makes the first call itself and the helpers the
        others (at most one more call than there are helpers). Every call has
        finished when this returns or raises, so the buffers they write to may
        be reused; the first error is raised.
        """
        if len(calls) > len(self._threads) + 1:
            raise ValueError(f"{len(calls)} calls for {len(self._threads)} helper threads + 1")
        for args in calls[1:]:
            self._tasks.put((fn, args))
        errors: list[BaseException] = []
        try:
            if calls:
                fn(*calls[0])
        finally:
            for _ in calls[1:]:  # wait for every helper, even if our call failed
                if (error := self._done.get()) is not None:
                    errors.append(error)
        if errors:
            raise errors[0]
