"""Where a store's files live: a local folder or an fsspec filesystem.

Each backend offers the same small set of operations (read with a size limit,
exclusive and atomic writes, listing, a writers' lock); the object-store backend
is in :mod:`weightwidget._object_store`. Everything here moves bytes; what the
bytes mean is :mod:`weightwidget._records`' and :mod:`weightwidget.store`'s.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
import threading
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import StoreCorruptedError, StoreLockTimeout, StoreWriteWarning

Buffers = list[Any]  # bytes-like parts written one after another (no joined copy)
# every path the store reads is one of these: nothing absolute, no "..", no odd bytes
_SAFE_REL = re.compile(
    r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,199}/){0,3}[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$"
)


def joined(data: bytes | Buffers) -> bytes:
    """The bytes of ``data``, joining buffer lists (small files and remote stores)."""
    return b"".join(bytes(p) for p in data) if isinstance(data, list) else bytes(data)


_PROCESS_LOCKS: dict[str, threading.RLock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(key: str) -> threading.RLock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.RLock())


def _check_rel(rel: str) -> str:
    if not _SAFE_REL.match(rel) or ".." in rel.split("/"):
        raise StoreCorruptedError(
            f"refusing the path {rel[:200]!r}: not a store file name", path=rel
        )
    return rel


def read_each(files: Any, rels: list[str], *, limit: int | None = None) -> dict[str, bytes | None]:
    """``files.read`` of each name in turn; a missing file maps to None."""
    out: dict[str, bytes | None] = {}
    for rel in rels:
        try:
            out[rel] = files.read(rel, limit=limit)
        except FileNotFoundError:
            out[rel] = None
    return out


class _LocalFiles:
    """A local folder: fsync + link/rename for atomic writes, a file lock for writers.

    Reads refuse anything that is not a regular file inside the folder: symbolic
    links, FIFOs, devices and sub-folders that are links are errors, never followed.
    """

    remote = False
    #: What opening one file costs, in bytes read (for the snapshot policy).
    file_cost = 16 << 10

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)
        self._checked_dirs: set[str] = set()

    def path(self, rel: str) -> Path:
        _check_rel(rel)
        parent = rel.rpartition("/")[0]
        if parent and parent not in self._checked_dirs:
            sub = self.root / parent
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISLNK(os.lstat(sub).st_mode):
                    raise StoreCorruptedError(
                        f"{sub} is a symbolic link; a store's folders must be real folders",
                        path=str(sub),
                    )
                self._checked_dirs.add(parent)
        return self.root / rel

    def check_folders(self) -> None:
        """Refuse a store whose folders are symbolic links (they could point anywhere)."""
        for sub in ("base", "revisions", "snapshots", "columns", "log"):
            folder = self.root / sub
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISLNK(os.lstat(folder).st_mode):
                    raise StoreCorruptedError(
                        f"{folder} is a symbolic link; a store's folders must be real folders",
                        path=str(folder),
                    )

    def exists(self, rel: str) -> bool:
        # any entry counts (a link, a FIFO): reading it then refuses it, with a warning
        try:
            os.lstat(self.path(rel))
            return True
        except FileNotFoundError:
            return False

    def read(self, rel: str, *, limit: int | None = None) -> bytes:
        path = self.path(rel)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        flags |= getattr(os, "O_BINARY", 0)
        try:
            if not hasattr(os, "O_NOFOLLOW") and stat.S_ISLNK(os.lstat(path).st_mode):
                raise OSError(errno.ELOOP, "symbolic link")
            fd = os.open(path, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreCorruptedError(
                    f"{path} is a symbolic link; store files are never followed", path=str(path)
                ) from None
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise FileNotFoundError(str(path)) from None
            raise
        with open(fd, "rb", closefd=True) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise StoreCorruptedError(
                    f"{path} is not a regular file (a FIFO, device or folder); refusing to read it",
                    path=str(path),
                )
            if limit is not None and info.st_size > limit:
                raise StoreCorruptedError(
                    f"{path} is {info.st_size:,} bytes, more than the {limit:,} it can hold",
                    path=str(path),
                )
            # read at most what fstat said (plus one byte to notice growth)
            return f.read(info.st_size if limit is None else min(info.st_size, limit) + 1)

    def size(self, rel: str) -> int:
        try:
            return os.lstat(self.path(rel)).st_size
        except FileNotFoundError:
            return 0

    def read_many(self, rels: list[str], *, limit: int | None = None) -> dict[str, bytes | None]:
        return read_each(self, rels, limit=limit)

    def listdir(self, rel: str) -> list[str]:
        folder = self.path(rel) if rel else self.root
        try:
            if rel and stat.S_ISLNK(os.lstat(folder).st_mode):
                raise StoreCorruptedError(
                    f"{folder} is a symbolic link; a store's folders must be real folders",
                    path=str(folder),
                )
            return os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, rel: str = "") -> None:
        (self.path(rel) if rel else self.root).mkdir(parents=True, exist_ok=True)

    def _tmp(self, final: Path) -> Path:
        return final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def write(
        self, rel: str, data: bytes | Buffers, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        """Write ``data`` atomically; ``exclusive`` raises FileExistsError if ``rel`` exists.

        ``durable=False`` skips the fsyncs, for hints and caches a reader can do
        without after a power loss. Nothing is left behind when this raises: the
        temporary file is removed.
        """
        final = self.path(rel)
        tmp = self._tmp(final)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                for part in data if isinstance(data, list) else [data]:
                    view = memoryview(part).cast("B")
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                os.link(tmp, final)  # fails if the name exists: a revision is never overwritten
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if durable:
            self._sync_dir(final.parent)

    def write_from(self, rel: str, produce: Callable[[Any], None]) -> dict[str, int]:
        """Atomically write a file that ``produce(fileobj)`` streams; return its crc/size."""
        final = self.path(rel)
        tmp = self._tmp(final)
        try:
            with open(tmp, "xb") as f:
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
        self._sync_dir(final.parent)
        return {"crc32": crc, "size": size}

    @staticmethod
    def _sync_dir(folder: Path) -> None:
        # the file is in place; a failed directory fsync only weakens durability
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            warnings.warn(f"could not fsync {folder}: {exc}", StoreWriteWarning, stacklevel=4)

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(rel))

    def remove_tree(self) -> None:
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)

    def clean_temporary(self) -> None:
        for sub in ("", "base", "revisions", "snapshots", "columns", "log"):
            for name in self.listdir(sub):
                if name.startswith(".tmp-"):
                    with contextlib.suppress(OSError):
                        (self.root / sub / name).unlink()

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        import filelock

        self.makedirs()
        path = self.root / "LOCK"
        with _process_lock(self.url):
            lock = filelock.FileLock(
                str(path), timeout=timeout, thread_local=False, preserve_lock_file=True
            )
            try:
                lock.acquire(poll_interval=0.002)
            except filelock.Timeout:
                raise StoreLockTimeout(
                    f"another process has held the writer lock {path} for more than "
                    f"{timeout:.0f} s; if no weightwidget process is running, the lock is "
                    "stale and can be deleted"
                ) from None
            try:
                yield
            finally:
                lock.release()  # the operating system also releases it when a process dies


class _FsspecFiles:
    """Any fsspec filesystem (``memory://``, ...).

    Writes go to a temporary name and are then moved; exclusive creation is a
    check-then-write under a process lock, so this backend assumes one writing
    process. Object stores (``s3://``) have a backend of their own.
    """

    remote = True
    file_cost = 256 << 10

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self.root = root.rstrip("/")
        self.url = url

    def path(self, rel: str) -> str:
        return f"{self.root}/{_check_rel(rel)}" if rel else self.root

    def check_folders(self) -> None:
        """Object stores have no symbolic links."""

    def exists(self, rel: str) -> bool:
        return bool(self.fs.isfile(self.path(rel)))

    def read(self, rel: str, *, limit: int | None = None) -> bytes:
        try:
            data = self.fs.cat_file(self.path(rel))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise FileNotFoundError(self.path(rel)) from exc
        if limit is not None and len(data) > limit:
            raise StoreCorruptedError(
                f"{self.path(rel)} is {len(data):,} bytes, more than the {limit:,} it can hold",
                path=self.path(rel),
            )
        return bytes(data)

    def read_many(self, rels: list[str], *, limit: int | None = None) -> dict[str, bytes | None]:
        return read_each(self, rels, limit=limit)

    def size(self, rel: str) -> int:
        try:
            return int(self.fs.size(self.path(rel)))
        except (FileNotFoundError, OSError):
            return 0

    def listdir(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self.path(rel), detail=False)
        except FileNotFoundError:
            return []
        return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def makedirs(self, rel: str = "") -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def write(
        self, rel: str, data: bytes | Buffers, *, exclusive: bool = False, durable: bool = True
    ) -> None:
        final = self.path(rel)
        with _process_lock(self.url + "#write"):
            if exclusive and self.fs.exists(final):
                raise FileExistsError(final)
            self.fs.pipe_file(final, joined(data))

    def write_from(self, rel: str, produce: Callable[[Any], None]) -> dict[str, int]:
        buf = io.BytesIO()
        produce(buf)
        data = buf.getvalue()
        self.write(rel, data)
        return _crc_entry(data)

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.path(rel))

    def remove_tree(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.root, recursive=True)

    def clean_temporary(self) -> None:
        return None  # writes here never use temporary names

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        with _process_lock(self.url):
            yield


def _crc_entry(blob: bytes) -> dict[str, int]:
    return {"crc32": zlib.crc32(blob), "size": len(blob)}
