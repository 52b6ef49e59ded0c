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
number of usable CPUs, at most 4. While workers draw, the interpreter's switch
interval is lowered to 1 ms (:func:`quick_switches`) so that they get the GIL
back promptly from a Python loop that holds it.
"""

from __future__ import annotations

import itertools
import mmap
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["ENV", "Workers", "copy", "count", "each", "mapped", "quick_switches", "zeros"]

ENV = "WEIGHTWIDGET_NUM_THREADS"
# Beyond this, more threads gain little: the draws are then bound by memory bandwidth.
_DEFAULT_MAX = 4
# Arrays from this size on are first written by several threads (see zeros()).
_PARALLEL_ZEROS_BYTES = 64 << 20
# Switch interval (seconds) while worker threads need the GIL back often (see quick_switches).
QUICK_SWITCH_INTERVAL = 0.001
_switches_lock = threading.Lock()
_switches_users = 0
_switches_saved = 0.0


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


def mapped(size: int, dtype: Any = float) -> np.ndarray:
    """Return a new 1-D array in freshly mapped memory, not yet touched (reads as zeros).

    Arrays of 64 MB or more are mapped directly (``mmap``), without the advice
    to use huge pages that numpy gives for large arrays: where
    ``/sys/kernel/mm/transparent_hugepage/defrag`` is ``madvise`` (the usual
    default), a page fault then compacts memory until it finds 2 MB free, and
    after other libraries (torch) have fragmented memory that took seconds (the
    1e8 epoch ran in 8.8-9.4 s with ``NUMPY_MADVISE_HUGEPAGE=0`` and 10.0-11.2
    s without). Each page is faulted in by its first write, so the caller can
    spread that cost over threads by writing different parts on each.
    Smaller arrays are plain ``np.zeros``.
    """
    dtype = np.dtype(dtype)
    nbytes = int(size) * dtype.itemsize
    if nbytes < _PARALLEL_ZEROS_BYTES:
        return np.zeros(size, dtype=dtype)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype)  # freed with the last view


def zeros(size: int, dtype: Any = float) -> np.ndarray:
    """Return a new 1-D array of zeros for large scratch work (:func:`mapped`, written by threads).

    The first write of each page faults, and the kernel zeroes the page: for
    800 MB that is about 0.4 s here. ``count()`` threads each write one part,
    so that cost is taken before the array's real work, on every core at once.
    """
    out = mapped(size, dtype)
    if out.nbytes >= _PARALLEL_ZEROS_BYTES:
        parts = count()
        cuts = [out.size * i // parts for i in range(parts + 1)]
        each(_zero, [(out[a:b],) for a, b in itertools.pairwise(cuts)])
    return out


def each(fn: Callable[..., Any], calls: Sequence[tuple]) -> None:
    """Call ``fn(*args)`` for each ``args`` in ``calls``, up to ``count()`` at once.

    Returns when every call has finished; raises the first error (the calls
    of a batch all finish first, see :meth:`Workers.run`).
    """
    threads = max(1, min(len(calls), count()))
    with Workers(threads - 1) as workers:
        for start in range(0, len(calls), threads):
            workers.run(fn, calls[start : start + threads])


def copy(values: np.ndarray) -> np.ndarray:
    """Return a copy of the 1-D ``values`` in memory from :func:`zeros`."""
    out = zeros(values.size, dtype=values.dtype)
    np.copyto(out, values)
    return out


def _zero(part: np.ndarray) -> None:
    part.fill(0)


@contextmanager
def quick_switches() -> Iterator[None]:
    """Lower the interpreter's thread switch interval to 1 ms for the ``with`` block.

    A worker thread running numpy needs the GIL back between two calls. While
    another thread runs Python (a training loop taking indices), it gets the
    GIL only when that thread is made to let go, after
    ``sys.getswitchinterval()`` (5 ms by default), so a worker making many
    short calls idles most of the time: at 1e8 draws the lookups waited for
    about a second in all. The interval is lowered (never raised) only while
    workers are busy, and restored when the last such block ends, unless
    someone else changed it meanwhile (their value stays).
    """
    global _switches_users, _switches_saved
    with _switches_lock:
        if _switches_users == 0:
            _switches_saved = sys.getswitchinterval()
            if _switches_saved > QUICK_SWITCH_INTERVAL:
                sys.setswitchinterval(QUICK_SWITCH_INTERVAL)
        _switches_users += 1
    try:
        yield
    finally:
        with _switches_lock:
            _switches_users -= 1
            if _switches_users == 0 and _switches_saved > QUICK_SWITCH_INTERVAL:
                # getswitchinterval() reads back the interval rounded to microseconds
                if abs(sys.getswitchinterval() - QUICK_SWITCH_INTERVAL) < 1e-6:
                    sys.setswitchinterval(_switches_saved)


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

    def run(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        *,
        before: Callable[..., Any] | None = None,
    ) -> None:
        """Call ``fn(*args)`` for each ``args`` in ``calls`` at once; return when all are done.

        The helpers make the first calls and the calling thread the last (at
        most one more call than there are helpers). ``before(*args)``, if
        given, runs in the calling thread just before each call is handed out,
        in order: a helper starts on its part while the next is prepared. Every
        call has finished when this returns or raises, so the buffers they
        write to may be reused; the first error is raised.
        """
        if len(calls) > len(self._threads) + 1:
            raise ValueError(f"{len(calls)} calls for {len(self._threads)} helper threads + 1")
        errors: list[BaseException] = []
        handed = 0
        try:
            for args in calls[:-1]:
                if before is not None:
                    before(*args)
                self._tasks.put((fn, args))
                handed += 1
            if calls:
                if before is not None:
                    before(*calls[-1])
                fn(*calls[-1])
        finally:
            for _ in range(handed):  # wait for every helper, even if our call failed
                if (error := self._done.get()) is not None:
                    errors.append(error)
        if errors:
            raise errors[0]
