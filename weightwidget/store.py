"""The revision store: files only.

Layout of a store folder (a local path or an fsspec URL such as ``memory://x``)::

    meta.json                   format version, name, columns, fingerprint, checksums
    base/...                    the data columns, written once, encoded by the table
                                (``_columns``: columns.parquet, text-<i>.parquet,
                                tensor-<i>.npy); the store only checksums them
    revisions/r000000000007.rev one file per revision: header (parent, author,
                                message, time) + changed row ids + new weights
    snapshots/r000000000000.snap full weights at a revision (revision 0 always)
    columns/<name>.col          columns added later (per-run metrics), one file a set
    LOCK                        the writers' lock

Every file under ``revisions/``, ``snapshots/`` and ``columns/`` is framed as
``MAGIC | header length | JSON header | payload | CRC32`` and is written to a
temporary name, fsynced and then linked or renamed into place, so a reader sees
either the whole file or none of it. Writers hold an exclusive lock while they
pick the next revision number. The weights at a revision are the nearest
snapshot on its parent chain plus the deltas after it; a snapshot is written
every :data:`SNAPSHOT_EVERY` revisions (or sooner for large edits) so opening
reads few files.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import struct
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    StoreCorruptedError,
    StoreCorruptionWarning,
    StoreError,
    StoreFormatError,
    StoreLockTimeout,
)

__all__ = ["FORMAT_VERSION", "RevisionStore"]

FORMAT_VERSION = 1
MAGIC = b"WWSTORE1"
SNAPSHOT_EVERY = 32
LOCK_TIMEOUT = 60.0
_REV_NAME = re.compile(r"^r(\d{12})\.rev$")
_SNAP_NAME = re.compile(r"^r(\d{12})\.snap$")


# --------------------------------------------------------------------------- framing
Buffers = list[Any]  # bytes-like parts written one after another (no joined copy)


def frame(header: dict[str, Any], *payload: Any) -> Buffers:
    """Return ``MAGIC | len | header JSON | payload... | crc32`` as a list of buffers.

    Large payloads (weights, ids) are passed as memoryviews and never copied.
    """
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    parts: Buffers = [MAGIC, struct.pack("<I", len(head)), head, *payload]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    parts.append(struct.pack("<I", crc))
    return parts


def joined(data: bytes | Buffers) -> bytes:
    """The bytes of ``data``, joining buffer lists (small files and remote stores)."""
    return b"".join(data) if isinstance(data, list) else bytes(data)


def unframe(data: bytes, path: str) -> tuple[dict[str, Any], memoryview]:
    """Check and split a framed file; raise :class:`StoreCorruptedError` naming ``path``."""
    if len(data) < len(MAGIC) + 8 or not data.startswith(MAGIC):
        raise StoreCorruptedError(
            f"{path} is truncated or not a weightwidget store file ({len(data)} bytes, bad header)",
            path=path,
        )
    (stored_crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(memoryview(data)[:-4]) != stored_crc:
        raise StoreCorruptedError(
            f"{path} is corrupted or truncated: its checksum does not match", path=path
        )
    (head_len,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start : start + head_len])
    except ValueError as exc:  # checksum passed, so this is a writer bug
        raise StoreCorruptedError(f"{path} has an unreadable header", path=path) from exc
    return header, memoryview(data)[start + head_len : -4]


# --------------------------------------------------------------------------- backends
_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.RLock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.RLock())


class _LocalFiles:
    """Local folder: fsync + link/rename for atomic writes, flock for the lock."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def read(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def listdir(self, rel: str) -> list[str]:
        try:
            return os.listdir(self.path(rel))
        except FileNotFoundError:
            return []

    def makedirs(self, rel: str = "") -> None:
        self.path(rel).mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, data: bytes | Buffers, *, no_clobber: bool = False) -> None:
        final = self.path(rel)
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            for part in data if isinstance(data, list) else [data]:
                view = memoryview(part).cast("B")
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if no_clobber:
                os.link(tmp, final)  # fails if the name exists: never overwrite a revision
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write_from(self, rel: str, produce: Callable[[Any], None]) -> dict[str, int]:
        """Atomically write a file that ``produce(fileobj)`` streams; return its crc/size."""
        final = self.path(rel)
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "wb") as f:
                produce(f)
                f.flush()
                os.fsync(f.fileno())
            crc, size = 0, 0
            with open(tmp, "rb") as f:  # read back: the checksum is of what is on disk
                while chunk := f.read(1 << 20):
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return {"crc32": crc, "size": size}

    def remove_tree(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)

    def clean_temporary(self) -> None:
        for sub in ("", "base", "revisions", "snapshots", "columns"):
            for name in self.listdir(sub):
                if name.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        self.path(sub).joinpath(name).unlink()

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        self.makedirs()
        path = self.path("LOCK")
        with _process_lock(self.url):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                deadline = time.monotonic() + timeout
                delay = 0.001
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StoreLockTimeout(
                                f"another process has held the writer lock {path} for "
                                f"more than {timeout:.0f} s; if no weightwidget process is "
                                "running, the lock is stale and can be deleted"
                            ) from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
                yield
            finally:
                os.close(fd)  # closing releases the flock, also when the process dies


class _FsspecFiles:
    """Any fsspec filesystem (memory://, s3://, ...).

    Writes go to a temporary name and are then moved; the lock is a process
    lock plus a lock file, so a remote store assumes one writing machine.
    """

    def __init__(self, url: str) -> None:
        import fsspec

        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.url = url

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def read(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileNotFoundError(self.path(rel)) from exc

    def listdir(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except FileNotFoundError:
            return []
        return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def makedirs(self, rel: str = "") -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def write(self, rel: str, data: bytes | Buffers, *, no_clobber: bool = False) -> None:
        final = self.path(rel)
        if no_clobber and self.fs.exists(final):
            raise FileExistsError(final)
        parent, name = final.rsplit("/", 1)
        tmp = f"{parent}/.tmp-{name}-{uuid.uuid4().hex[:8]}"
        self.fs.pipe_file(tmp, joined(data))
        self.fs.mv(tmp, final)

    def write_from(self, rel: str, produce: Callable[[Any], None]) -> dict[str, int]:
        buf = io.BytesIO()
        produce(buf)
        data = buf.getvalue()
        self.write(rel, data)
        return _crc_entry(data)

    def remove_tree(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.root, recursive=True)

    def clean_temporary(self) -> None:
        for sub in ("", "base", "revisions", "snapshots", "columns"):
            for name in self.listdir(sub):
                if name.startswith(".tmp-"):
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.rm(self.path(f"{sub}/{name}" if sub else name))

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        with _process_lock(self.url):
            yield


def _files_for(url: str) -> _LocalFiles | _FsspecFiles:
    text = os.fspath(url)
    if "://" not in text:
        return _LocalFiles(text)
    if text.startswith("file://"):
        return _LocalFiles(text[len("file://") :])
    return _FsspecFiles(text)


# --------------------------------------------------------------------------- revisions
@dataclass(frozen=True)
class Revision:
    """One revision: its header and its delta (row ids and their new weights).

    A *full* revision (``ids is None``) holds every row's weight; it is written
    when most rows change, and serves as a snapshot.
    """

    header: dict[str, Any]
    ids: np.ndarray | None
    values: np.ndarray

    def apply(self, weights: np.ndarray) -> None:
        """Write this revision's values into ``weights`` in place."""
        if self.ids is None:
            weights[:] = self.values
        else:
            weights[self.ids] = self.values

    @property
    def number(self) -> int:
        return int(self.header["revision"])

    @property
    def parent(self) -> int | None:
        parent = self.header.get("parent")
        return None if parent is None else int(parent)


def rev_name(rev: int) -> str:
    """File name of a revision inside ``revisions/``."""
    return f"revisions/r{rev:012d}.rev"


def snap_name(rev: int) -> str:
    """File name of a snapshot inside ``snapshots/``."""
    return f"snapshots/r{rev:012d}.snap"


def encode_delta(ids: np.ndarray | None, values: np.ndarray, header: dict[str, Any]) -> Buffers:
    """Frame a delta compactly: uint32 ids when they fit, one value when all are equal.

    ``ids=None`` writes a full revision: every row's weight, no ids.
    """
    if ids is None:
        header = {**header, "n_ids": len(values), "value_mode": "full"}
        return frame(header, _f8(values))
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    id_dtype = "<u4" if ids.size == 0 or int(ids.max()) < 2**32 else "<i8"
    scalar = values.size > 0 and bool(np.all(values == values[0]))
    header = {
        **header,
        "n_ids": int(ids.size),
        "id_dtype": id_dtype,
        "value_mode": "scalar" if scalar else "array",
    }
    return frame(header, _view(ids.astype(id_dtype)), _f8(values[:1] if scalar else values))


def decode_delta(data: bytes, path: str) -> Revision:
    """Inverse of :func:`encode_delta`."""
    header, payload = unframe(data, path)
    try:
        n = int(header["n_ids"])
        if header["value_mode"] == "full":
            values = np.frombuffer(payload, dtype="<f8", count=n)
            if len(payload) != 8 * n:
                raise ValueError("payload size")
            return Revision(header, None, values)
        id_dtype = np.dtype(header["id_dtype"])
        ids = np.frombuffer(payload, dtype=id_dtype, count=n).astype(np.int64)
        rest = payload[n * id_dtype.itemsize :]
        if header["value_mode"] == "scalar":
            values = np.full(n, np.frombuffer(rest, dtype="<f8", count=1)[0])
        else:
            values = np.frombuffer(rest, dtype="<f8", count=n).copy()
    except (KeyError, ValueError, IndexError) as exc:
        raise StoreCorruptedError(f"{path} has an inconsistent delta", path=path) from exc
    return Revision(header, ids, values)


class RevisionStore:
    """Read and write one table's store. Takes and returns arrays; knows no tables.

    Parameters
    ----------
    url : str
        Folder path or fsspec URL of the store.
    """

    def __init__(self, url: str) -> None:
        self.files = _files_for(url)
        self.url = self.files.url
        self.meta: dict[str, Any] = {}
        self._headers: dict[int, dict[str, Any]] = {}
        self._bad: dict[int, str] = {}  # revision -> damaged file, reported once
        self._cleaned = False

    # ----------------------------------------------------------------- lifecycle
    def exists(self) -> bool:
        """Whether a complete store (its ``meta.json``) is at this location."""
        return self.files.exists("meta.json")

    def read_meta(self) -> dict[str, Any]:
        """Read and check ``meta.json``: checksum and format version."""
        try:
            raw = self.files.read("meta.json")
        except FileNotFoundError:
            raise StoreError(
                f"no weightwidget store at {self.url} (meta.json is missing); create one "
                "with WeightTable.from_pandas(..., store=...)"
            ) from None
        path = f"{self.url}/meta.json"
        try:
            meta = json.loads(raw)
        except ValueError as exc:
            raise StoreCorruptedError(f"{path} is corrupted: not valid JSON", path=path) from exc
        version = meta.get("format_version")
        if not isinstance(version, int):
            raise StoreCorruptedError(f"{path} has no format_version", path=path)
        if version > FORMAT_VERSION:
            raise StoreFormatError(
                f"the store at {self.url} was written with store format {version}, newer "
                f"than this weightwidget reads (format {FORMAT_VERSION}); upgrade with "
                "`pip install -U weightwidget`"
            )
        checksum = meta.pop("checksum", None)
        if checksum != _meta_checksum(meta):
            raise StoreCorruptedError(
                f"{path} is corrupted: its checksum does not match", path=path
            )
        self.meta = meta
        return meta

    def create(
        self,
        meta: dict[str, Any],
        files: dict[str, bytes | Callable[[Any], None]],
        initial: np.ndarray,
        header: dict[str, Any],
    ) -> None:
        """Write a new store: the encoded base files, revision 0 and its snapshot, then meta.json.

        Parameters
        ----------
        meta : dict
            Table metadata (name, rows, label, columns, fingerprint, ...).
        files : dict of str to bytes or callable
            Base files by path relative to the store (``"base/columns.parquet"``):
            their bytes, or a callable that streams them into a binary file object.
            The store checksums them and never looks inside.
        initial : ndarray of float64
            The weights of revision 0.
        header : dict
            Revision 0's header (author, message, time, ...).

        ``meta.json`` goes last: until it exists the folder is not a store, so a
        crash during creation leaves nothing that opens half-made.
        """
        self.files.makedirs()
        with self.lock():
            if self.exists():
                raise StoreError(f"a store was created at {self.url} meanwhile")
            for sub in ("base", "revisions", "snapshots", "columns"):
                self.files.makedirs(sub)
            entries: dict[str, dict[str, int]] = {}
            for rel, data in files.items():
                if callable(data):
                    entries[rel] = self.files.write_from(rel, data)
                else:
                    self.files.write(rel, data)
                    entries[rel] = _crc_entry(data)
            header = {**header, "revision": 0, "parent": None, "snapshot": True}
            self.files.write(snap_name(0), frame({"revision": 0}, _f8(initial)))
            self.files.write(rev_name(0), encode_delta(np.empty(0, np.int64), np.empty(0), header))
            meta = {**meta, "format_version": FORMAT_VERSION, "files": entries}
            self._write_meta(meta)
            self.meta = meta

    def _write_meta(self, meta: dict[str, Any]) -> None:
        body = {**meta, "checksum": _meta_checksum(meta)}
        self.files.write("meta.json", json.dumps(body, indent=1, sort_keys=True).encode())

    def destroy(self) -> None:
        """Delete the whole store folder."""
        self.files.remove_tree()

    def read_base(self) -> tuple[bytes, dict[str, bytes]]:
        """Return the base parquet bytes and tensor files, checked against meta.json."""
        files = self.meta.get("files", {})
        out: dict[str, bytes] = {}
        for rel, entry in files.items():
            try:
                blob = self.files.read(rel)
            except FileNotFoundError:
                raise StoreCorruptedError(
                    f"{self.url}/{rel} is missing", path=f"{self.url}/{rel}"
                ) from None
            if len(blob) != entry["size"] or zlib.crc32(blob) != entry["crc32"]:
                raise StoreCorruptedError(
                    f"{self.url}/{rel} is corrupted or truncated: its checksum does not match "
                    "meta.json; the base columns cannot be recovered from this store",
                    path=f"{self.url}/{rel}",
                )
            out[rel] = blob
        parquet = out.pop("base/columns.parquet")
        return parquet, {rel.removeprefix("base/"): blob for rel, blob in out.items()}

    # ----------------------------------------------------------------- locking
    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Exclusive writer lock; removes temporary files a killed writer left."""
        with self.files.lock(timeout):
            if not self._cleaned:
                self.files.clean_temporary()
                self._cleaned = True
            yield

    # ----------------------------------------------------------------- revisions
    def revision_numbers(self) -> list[int]:
        """All revision numbers with a file, ascending (damaged ones included)."""
        nums = []
        for name in self.files.listdir("revisions"):
            m = _REV_NAME.match(name)
            if m:
                nums.append(int(m.group(1)))
        return sorted(nums)

    def snapshot_numbers(self) -> set[int]:
        """Revisions that have a snapshot file."""
        out = set()
        for name in self.files.listdir("snapshots"):
            m = _SNAP_NAME.match(name)
            if m:
                out.add(int(m.group(1)))
        return out

    def read_revision(self, rev: int) -> Revision:
        """Read and check one revision file."""
        rel = rev_name(rev)
        try:
            data = self.files.read(rel)
        except FileNotFoundError:
            raise StoreCorruptedError(
                f"{self.url}/{rel} is missing", path=f"{self.url}/{rel}"
            ) from None
        revision = decode_delta(data, f"{self.url}/{rel}")
        if revision.number != rev:
            raise StoreCorruptedError(
                f"{self.url}/{rel} holds revision {revision.number}", path=f"{self.url}/{rel}"
            )
        self._headers[rev] = revision.header
        return revision

    def header(self, rev: int) -> dict[str, Any]:
        """The header of a revision (cached: revision files never change)."""
        if rev not in self._headers:
            self.read_revision(rev)
        return self._headers[rev]

    def read_snapshot(self, rev: int, n_rows: int) -> np.ndarray:
        """Full weights at ``rev`` from its snapshot file."""
        rel = snap_name(rev)
        path = f"{self.url}/{rel}"
        try:
            data = self.files.read(rel)
        except FileNotFoundError:
            raise StoreCorruptedError(f"{path} is missing", path=path) from None
        header, payload = unframe(data, path)
        if header.get("revision") != rev or len(payload) != 8 * n_rows:
            raise StoreCorruptedError(f"{path} does not hold {n_rows} weights", path=path)
        return np.frombuffer(payload, dtype="<f8")  # read-only view; callers copy

    def chain(self, rev: int, *, stop_at: int | None = None) -> tuple[int, list[Revision]]:
        """Walk parents from ``rev`` to a snapshot (or to ``stop_at``).

        Returns the revision the walk ended on and the deltas after it, oldest first.
        """
        snapshots = self.snapshot_numbers()
        deltas: list[Revision] = []
        current: int | None = rev
        while current is not None:
            if current == stop_at or (stop_at is None and current in snapshots):
                return current, deltas[::-1]
            revision = self.read_revision(current)
            deltas.append(revision)
            current = revision.parent
        raise StoreCorruptedError(
            f"{self.url}/{rev_name(rev)}: its parent chain ends without a snapshot",
            path=f"{self.url}/{rev_name(rev)}",
        )

    def weights_at(self, rev: int, n_rows: int) -> np.ndarray:
        """Reconstruct the full weights at ``rev`` (snapshot + later deltas).

        A damaged snapshot is skipped in favour of an older one.
        """
        skip: set[int] = set()
        while True:
            snapshots = self.snapshot_numbers() - skip
            deltas: list[Revision] = []
            current: int | None = rev
            base: np.ndarray | None = None
            while current is not None and current not in snapshots:
                revision = self.read_revision(current)
                if revision.ids is None:  # a full revision is a snapshot of its own
                    base = revision.values
                    break
                deltas.append(revision)
                current = revision.parent
            if base is None:
                if current is None:
                    raise StoreCorruptedError(
                        f"{self.url}/{snap_name(0)}: no readable snapshot on the chain of "
                        f"revision {rev}",
                        path=f"{self.url}/{snap_name(0)}",
                    )
                try:
                    base = self.read_snapshot(current, n_rows)
                except StoreCorruptedError as exc:
                    self._report(current, exc)
                    skip.add(current)
                    continue
            if len(base) != n_rows:
                raise StoreCorruptedError(
                    f"{self.url}/{rev_name(rev)}: a full revision on its chain does not hold "
                    f"{n_rows} weights",
                    path=f"{self.url}/{rev_name(rev)}",
                )
            weights = base.copy()
            for delta in reversed(deltas):
                delta.apply(weights)
            return weights

    def head(
        self, n_rows: int, *, known: tuple[int, np.ndarray] | None = None
    ) -> tuple[int, np.ndarray]:
        """The newest revision that reads back whole, and its weights.

        Parameters
        ----------
        n_rows : int
            Number of rows.
        known : (revision, weights), optional
            A revision the caller already holds: when it is an ancestor of the
            head only the deltas after it are read.

        Damaged revision files are skipped with a :class:`StoreCorruptionWarning`
        naming the file; the head is then the newest revision whose chain is whole.
        """
        numbers = self.revision_numbers()
        if not numbers:
            raise StoreCorruptedError(
                f"{self.url}/revisions holds no revision files", path=f"{self.url}/revisions"
            )
        for rev in reversed(numbers):
            if rev in self._bad:
                continue
            if known is not None and rev == known[0]:
                return known
            try:
                if known is not None and known[0] < rev:
                    try:
                        start, deltas = self.chain(rev, stop_at=known[0])
                    except StoreCorruptedError as exc:
                        if "without a snapshot" not in str(exc):
                            raise
                        start = -1
                    if start == known[0]:
                        weights = known[1].copy()
                        for delta in deltas:
                            delta.apply(weights)
                        return rev, weights
                return rev, self.weights_at(rev, n_rows)
            except StoreCorruptedError as exc:
                self._report(rev, exc)
        raise StoreCorruptedError(
            f"no revision of the store at {self.url} reads back whole", path=self.url
        )

    def _report(self, rev: int, exc: StoreCorruptedError) -> None:
        if self._bad.get(rev) == exc.path:
            return
        self._bad[rev] = exc.path
        warnings.warn(
            f"{exc}; skipping it: the table opens at the last good revision",
            StoreCorruptionWarning,
            stacklevel=4,
        )

    def next_number(self) -> int:
        """The number the next revision gets (never reuses a number, even a damaged one)."""
        numbers = self.revision_numbers()
        return (numbers[-1] + 1) if numbers else 0

    def commit(
        self,
        parent: int,
        ids: np.ndarray | None,
        values: np.ndarray,
        header: dict[str, Any],
        weights_after: np.ndarray,
    ) -> dict[str, Any]:
        """Write the next revision (the caller holds :meth:`lock`).

        ``ids=None`` writes a full revision (``values`` are all the weights).
        Otherwise a snapshot is written too when the chain since the last one is
        long or large. Returns the header written.
        """
        rev = self.next_number()
        header = {**header, "revision": rev, "parent": parent}
        self.files.write(rev_name(rev), encode_delta(ids, values, header), no_clobber=True)
        full = {**header, "n_ids": len(values), "value_mode": "full" if ids is None else "delta"}
        self._headers[rev] = full
        if ids is not None and self._needs_snapshot(rev, len(weights_after)):
            self.files.write(snap_name(rev), frame({"revision": rev}, _f8(weights_after)))
        return full

    def _needs_snapshot(self, rev: int, n_rows: int) -> bool:
        snapshots = self.snapshot_numbers()
        steps, rows = 0, 0
        current: int | None = rev
        while current is not None and current not in snapshots:
            head = self.header(current)
            if head.get("value_mode") == "full":
                return False
            steps += 1
            rows += int(head.get("n_ids", 0))
            if steps >= SNAPSHOT_EVERY or rows >= max(n_rows // 2, 1):
                return True
            current = head.get("parent")
        return False

    # ----------------------------------------------------------------- extra columns
    def write_columns(self, name: str, parquet: bytes, header: dict[str, Any]) -> None:
        """Persist a set of added columns (e.g. one run's metrics) as one file."""
        self.files.makedirs("columns")
        self.files.write(f"columns/{name}.col", frame({**header, "set": name}, parquet))

    def read_columns(self) -> list[tuple[dict[str, Any], bytes]]:
        """All added column sets, oldest first; damaged files are reported and skipped."""
        out = []
        for name in sorted(self.files.listdir("columns")):
            if not name.endswith(".col") or name.startswith("."):
                continue
            rel = f"columns/{name}"
            try:
                header, payload = unframe(self.files.read(rel), f"{self.url}/{rel}")
            except StoreCorruptedError as exc:
                warnings.warn(
                    f"{exc}; these columns are skipped", StoreCorruptionWarning, stacklevel=3
                )
                continue
            out.append((header, bytes(payload)))
        return sorted(out, key=lambda item: item[0].get("created", 0))


def _view(values: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(values)).cast("B")


def _f8(values: np.ndarray) -> memoryview:
    return _view(np.ascontiguousarray(values, dtype="<f8"))


def _crc_entry(blob: bytes) -> dict[str, int]:
    return {"crc32": zlib.crc32(blob), "size": len(blob)}


def _meta_checksum(meta: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
