"""The revision store: commits, history, states and snapshots of one table.

It takes and returns arrays and knows no tables. The bytes live in a backend
(:mod:`weightwidget._files`: a local folder or an fsspec filesystem;
:mod:`weightwidget._object_store`: S3) and are laid out by :mod:`weightwidget._records`.

Layout of a store folder (a local path, ``s3://bucket/prefix`` or another fsspec URL)::

    meta.json                    format version, name, columns, fingerprint, base checksums
    base/<token>/...             the data columns, written once, encoded by the table
                                 (``_columns``: columns.parquet, text-<i>.parquet,
                                 tensor-<i>.npy); the store only checksums them
    revisions/r000000000007.rev  one file per revision: header (parent, author, session,
                                 message, time, action) + changed row ids + new values
    snapshots/r000000000064.snap the whole state at a revision, compressed
    columns/c-<token>.parquet    a set of columns added by one revision (per-run metrics)
    log/b000000000.log           the headers of revisions 0-255, for a quick history()
    log/b000000000.pack          revisions 0-255's files in one, for a quick long replay
    HEAD                         {"revision": N}: a hint, so a check for news costs O(1)
    LOCK                         the writers' lock (local folders)

Every file under ``revisions/``, ``snapshots/`` and ``log/`` is framed as
``MAGIC | header length | JSON header | payload | CRC32`` and names the revision it
holds, so a file copied under another name is detected. Files are written to a
temporary name, fsynced and then linked into place: a reader sees the whole file or
none of it. A revision number is claimed by creating its file exclusively (a hard
link that fails if the name exists), so a revision is committed exactly once, at the
moment its file appears; snapshots, log chunks and ``HEAD`` are written after that
and a failure there is reported as a warning, never as a failed commit.

The state at a revision is the nearest snapshot on its parent chain plus the deltas
after it. A snapshot is written when replaying the deltas since the last one would
cost more than reading a snapshot (see :meth:`RevisionStore._snapshot_due`).

Format 1 stores (weightwidget 0.1) open as they are; the first write upgrades
``meta.json`` to format 2 (their old files stay readable).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._files import _crc_entry, _FsspecFiles, _LocalFiles
from ._records import (  # re-exported: the store's record format
    Change,
    Revision,
    State,
    _compress,
    _decompress,
    decode_revision,
    decode_vector,
    encode_revision,
    encode_vector,
    frame,
    log_name,
    pack_name,
    rev_name,
    snap_name,
    unframe,
)
from .errors import (
    StoreCorruptedError,
    StoreCorruptionWarning,
    StoreError,
    StoreFormatError,
    StoreWriteWarning,
)

__all__ = ["FORMAT_VERSION", "Change", "Revision", "RevisionStore", "RevisionTaken", "State"]

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
MAGIC = b"WWSTORE1"
LOCK_TIMEOUT = 60.0
#: Revisions per history log chunk.
LOG_CHUNK = 256
#: Revision files read ahead at once when walking a chain on a remote store.
_PREFETCH = 1024
#: The newest (partial) chunk is rewritten every this many revisions.
LOG_TAIL_EVERY = 16
#: Snapshots kept however old; older ones thin out to one per quarter octave of distance.
KEEP_NEWEST_SNAPSHOTS = 16
#: Payloads larger than this are compressed (zstd).
COMPRESS_OVER = 4096
_REV_NAME = re.compile(r"^r(\d{12})\.rev$")
_SNAP_NAME = re.compile(r"^r(\d{12})\.snap$")
_LOG_NAME = re.compile(r"^b(\d{9})\.log$")
_LOG_FILE = re.compile(r"^b\d{9}\.(?:log|pack)$")
# every path the store reads is one of these: nothing absolute, no "..", no odd bytes
_SAFE_REL = re.compile(
    r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,199}/){0,3}[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$"
)
_BASE_REL = re.compile(
    r"^base/(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,99}/)?[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$"
)
_COLUMNS_REL = re.compile(r"^columns/[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
_META_LIMIT = 64 << 20
# header fields only the revision file itself needs (how its payload is encoded)
_FILE_ONLY = frozenset({"changes", "codec", "raw_size", "format", "start"})


class RevisionTaken(StoreError):
    """Another writer claimed this revision number first; refresh and try again."""


def _files_for(url: str, storage_options: dict[str, Any] | None = None) -> Any:
    """The backend of a store location: a local folder, S3, or another fsspec filesystem.

    ``storage_options`` go to the fsspec filesystem (for S3: ``s3fs.S3FileSystem``).
    """
    from ._object_store import S3Files, is_object_store_url

    text = os.fspath(url)
    if "://" not in text or text.startswith("file://"):
        if storage_options:
            raise ValueError(
                f"storage_options apply to fsspec URLs such as s3://bucket/prefix; {text!r} "
                "is a local folder: leave storage_options out"
            )
        return _LocalFiles(text.removeprefix("file://"))
    if is_object_store_url(text):
        return S3Files(text, storage_options)
    return _FsspecFiles(text, storage_options)


# --------------------------------------------------------------------------- the store
class RevisionStore:
    """Read and write one table's store. Takes and returns arrays; knows no tables.

    Parameters
    ----------
    url : str
        Folder path or fsspec URL of the store (``s3://bucket/prefix``: several
        writing processes, see :mod:`weightwidget._object_store`).
    storage_options : dict, optional
        Options of the fsspec filesystem (credentials, endpoint, ...).
    """

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        self.files = _files_for(url, storage_options)
        self.url = self.files.url
        self.meta: dict[str, Any] = {}
        self._headers: dict[int, dict[str, Any]] = {}
        self._sizes: dict[int, int] = {}
        self._bad: dict[int, str] = {}  # revision -> damaged file, reported once
        self._cleaned = False
        self._snapshots: set[int] | None = None
        self._chain_cost = 0.0  # replay cost since the newest snapshot of our head
        self._last_snapshot_size = 0
        self._prefetched: dict[int, bytes] = {}  # revision files read ahead (remote stores)
        self._log_lengths: dict[int, int] = {}  # block -> revisions its chunk holds
        self._log_packed: set[int] = set()  # blocks whose chunk packs their revisions
        self._log_tried: set[int] = set()  # blocks header_block() has looked up
        self._block_sessions: dict[int, set[str] | None] = {}
        self._packs: dict[int, tuple[list[int], bytes]] = {}  # loaded while replaying

    @property
    def n_rows(self) -> int:
        """Rows of the table (from meta.json)."""
        return int(self.meta["n_rows"])

    # ----------------------------------------------------------------- lifecycle
    def exists(self) -> bool:
        """Whether a complete store (its ``meta.json``) is at this location."""
        return self.files.exists("meta.json")

    def read_meta(self) -> dict[str, Any]:
        """Read and check ``meta.json``: checksum, format version and file paths."""
        path = f"{self.url}/meta.json"
        self.files.check_folders()
        try:
            raw = self.files.read("meta.json", limit=_META_LIMIT)
        except FileNotFoundError:
            raise StoreError(
                f"no weightwidget store at {self.url} (meta.json is missing); create one "
                "with WeightTable.from_pandas(..., store=...)"
            ) from None
        try:
            meta = json.loads(raw)
            if not isinstance(meta, dict):
                raise ValueError("not an object")
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
        files = meta.get("files")
        n_rows = meta.get("n_rows")
        if not isinstance(files, dict) or not isinstance(n_rows, int) or n_rows <= 0:
            raise StoreCorruptedError(f"{path} lacks its files or row count", path=path)
        for name, entry in files.items():
            rel = entry.get("path", name) if isinstance(entry, dict) else None
            if not isinstance(rel, str) or not _BASE_REL.match(rel) or ".." in rel.split("/"):
                raise StoreCorruptedError(
                    f"{path} names the file {str(rel)[:200]!r}, which is not inside the "
                    "store's base/ folder; refusing to follow it",
                    path=path,
                )
        self.meta = meta
        return meta

    def create(
        self,
        meta: dict[str, Any],
        files: dict[str, bytes | Callable[[Any], None]],
        initial: np.ndarray,
        header: dict[str, Any],
    ) -> bool:
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

        Returns
        -------
        bool
            True if this call created the store; False if another process created
            it meanwhile (then nothing was written and the caller reopens it).

        ``meta.json`` goes last: until it exists the folder is not a store, so a
        crash during creation leaves nothing that opens half-made. On an object
        store (no lock) revision 0 is claimed first, see :meth:`_create_lockless`.
        """
        if getattr(self.files, "lockless", False):
            return self._create_lockless(meta, files, initial, header)
        self.files.makedirs()
        with self.lock():
            if self.exists():
                return False
            self._remove_unfinished_creation()
            for sub in ("base", "revisions", "snapshots", "columns", "log"):
                self.files.makedirs(sub)
            token = uuid.uuid4().hex[:12]  # two creators never share base files
            self.files.makedirs(f"base/{token}")
            entries: dict[str, dict[str, Any]] = {}
            for name, data in files.items():
                logical = name.removeprefix("base/")
                rel = f"base/{token}/{logical}"
                if callable(data):
                    entry: dict[str, Any] = self.files.write_from(rel, data)
                else:
                    self.files.write(rel, data)
                    entry = _crc_entry(data)
                entries[name] = {**entry, "path": rel}
            self.meta = {**meta, "n_rows": len(initial)}
            state = State(0, np.asarray(initial, dtype=np.float64))
            self._write_snapshot(state)
            header = {**header, "revision": 0, "parent": None}
            self.files.write(rev_name(0), encode_revision(header, []), exclusive=True)
            self._headers[0] = header
            meta = {**meta, "format_version": FORMAT_VERSION, "files": entries}
            self._write_meta(meta)
            self.meta = meta
            self._write_head(0)
        return True

    def _create_lockless(
        self,
        meta: dict[str, Any],
        files: dict[str, bytes | Callable[[Any], None]],
        initial: np.ndarray,
        header: dict[str, Any],
    ) -> bool:
        """Create a store where writers share no lock (object stores).

        The base files go under a fresh ``base/<token>/``. Revision 0 is then
        created exclusively: it holds the initial weights (a self-contained
        revision, so no snapshot is needed) and the whole ``meta.json`` in its
        header, and whoever creates it has won. ``meta.json`` is created
        exclusively from it last; from then on the store opens. A loser removes
        its base files and finishes the winner's ``meta.json`` if the winner has
        not yet (or was killed before it): nobody ever waits for another creator.
        """
        self.files.makedirs()
        if self.exists():
            return False
        if self.files.exists(rev_name(0)):  # another creator is at its last step
            self._finish_creation()
            return False
        token = uuid.uuid4().hex[:12]  # two creators never share base files
        entries: dict[str, dict[str, Any]] = {}
        try:
            for name, data in files.items():
                rel = f"base/{token}/{name.removeprefix('base/')}"
                if callable(data):
                    entry: dict[str, Any] = self.files.write_from(rel, data)
                else:
                    self.files.write(rel, data)
                    entry = _crc_entry(data)
                entries[name] = {**entry, "path": rel}
            full = {**meta, "n_rows": len(initial), "format_version": FORMAT_VERSION}
            full["files"] = entries
            initial = np.asarray(initial, dtype=np.float64)
            header = {
                **header,
                "revision": 0,
                "parent": None,
                "start": {"columns": []},
                "meta": {**full, "checksum": _meta_checksum(full)},
            }
            data = encode_revision(header, [Change("weight", None, initial)])
            self.files.write(rev_name(0), data, exclusive=True)
        except BaseException as exc:
            for entry in entries.values():  # ours only: nobody refers to them
                with contextlib.suppress(OSError, StoreError):
                    self.files.remove(entry["path"])
            if isinstance(exc, FileExistsError):
                self._finish_creation()
                return False
            raise
        self._finish_creation(header)
        self._write_head(0)
        return True

    def _finish_creation(self, header: dict[str, Any] | None = None) -> None:
        """Create ``meta.json`` from revision 0's header, unless it exists (lockless stores)."""
        path = f"{self.url}/{rev_name(0)}"
        if header is None:  # the header is enough: the row count is in it
            header, _ = unframe(self.files.read(rev_name(0)), path)
            if header.get("revision") != 0:
                raise StoreCorruptedError(f"{path} holds revision {header.get('revision')}", path)
        body = header.get("meta")
        if not isinstance(body, dict):
            raise StoreError(
                f"{self.url} holds a revision 0 but no meta.json, and the revision does not "
                "say how the store was created (it was not written by this weightwidget); "
                f"remove the objects under {self.url} and create the table again"
            )
        meta = {k: v for k, v in body.items() if k != "checksum"}
        if body.get("checksum") != _meta_checksum(meta):
            raise StoreCorruptedError(f"{path} holds a damaged meta.json", path=path)
        with contextlib.suppress(FileExistsError):
            self.files.write(
                "meta.json", json.dumps(body, indent=1, sort_keys=True).encode(), exclusive=True
            )
        self._headers[0] = header
        self.read_meta()

    def _remove_unfinished_creation(self) -> None:
        """Remove the store files a creation killed before ``meta.json`` left behind.

        Only names this module writes are removed: the folder may hold other files.
        """
        patterns = {
            "revisions": _REV_NAME,
            "snapshots": _SNAP_NAME,
            "log": _LOG_FILE,
            "columns": re.compile(r"^c-[0-9a-f]{16}\.parquet$"),
        }
        for sub, pattern in patterns.items():
            for name in self.files.listdir(sub):
                if pattern.match(name):
                    self.files.remove(f"{sub}/{name}")
        self.files.remove("HEAD")

    def _write_meta(self, meta: dict[str, Any]) -> None:
        body = {**meta, "checksum": _meta_checksum(meta)}
        self.files.write("meta.json", json.dumps(body, indent=1, sort_keys=True).encode())

    def upgrade(self) -> None:
        """Mark a format-1 store as format 2 before the first write (its files stay valid)."""
        if self.meta.get("format_version", FORMAT_VERSION) >= FORMAT_VERSION:
            return
        meta = {**self.meta, "format_version": FORMAT_VERSION, "legacy_columns": True}
        self._write_meta(meta)
        self.meta = meta

    def destroy(self) -> None:
        """Delete the whole store folder."""
        self.files.remove_tree()

    def read_base(self) -> tuple[bytes, dict[str, bytes]]:
        """Return the base parquet bytes and tensor files, checked against meta.json."""
        out: dict[str, bytes] = {}
        for name, entry in self.meta.get("files", {}).items():
            rel = entry.get("path", name)
            path = f"{self.url}/{rel}"
            try:
                blob = self.files.read(rel, limit=int(entry["size"]))
            except FileNotFoundError:
                raise StoreCorruptedError(f"{path} is missing", path=path) from None
            if len(blob) != entry["size"] or zlib.crc32(blob) != entry["crc32"]:
                raise StoreCorruptedError(
                    f"{path} is corrupted or truncated: its checksum does not match "
                    "meta.json; the base columns cannot be recovered from this store",
                    path=path,
                )
            out[name] = blob
        try:
            parquet = out.pop("base/columns.parquet")
        except KeyError:
            raise StoreCorruptedError(
                f"{self.url}/meta.json lists no base/columns.parquet", path=f"{self.url}/meta.json"
            ) from None
        return parquet, {name.removeprefix("base/"): blob for name, blob in out.items()}

    # ----------------------------------------------------------------- locking
    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Exclusive writer lock; removes temporary files a killed writer left."""
        with self.files.lock(timeout):
            if not self._cleaned:
                self.files.clean_temporary()
                self._cleaned = True
            yield

    # ----------------------------------------------------------------- numbering
    def revision_numbers(self) -> list[int]:
        """All revision numbers with a file, ascending (damaged ones included).

        Lists the folder: use :meth:`newest_number` to find the newest cheaply.
        """
        nums = []
        for name in self.files.listdir("revisions"):
            m = _REV_NAME.match(name)
            if m:
                nums.append(int(m.group(1)))
        return sorted(nums)

    def _has_revision(self, rev: int) -> bool:
        return self.files.exists(rev_name(rev))

    def newest_number(self) -> int:
        """The newest revision number with a file.

        The ``HEAD`` hint, checked and probed forward: a few file checks, however
        long the history.
        """
        hint = self._read_head()
        if hint is None or not self._has_revision(hint):
            numbers = self.revision_numbers()
            if not numbers:
                raise StoreCorruptedError(
                    f"{self.url}/revisions holds no revision files", path=f"{self.url}/revisions"
                )
            return numbers[-1]
        if not self._has_revision(hint + 1):
            return hint
        lo, step = hint + 1, 1  # exists; gallop to a missing one, then bisect
        while self._has_revision(lo + step):
            lo += step
            step *= 2
        hi = lo + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._has_revision(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def _read_head(self) -> int | None:
        try:
            raw = self.files.read("HEAD", limit=4096)
            value = json.loads(raw)["revision"]
        except (FileNotFoundError, ValueError, KeyError, TypeError, StoreCorruptedError):
            return None
        return value if isinstance(value, int) and value >= 0 else None

    def _write_head(self, rev: int) -> None:
        # a hint: readers check it and probe past it, so it needs no fsync
        self.files.write("HEAD", json.dumps({"revision": rev}).encode(), durable=False)

    # ----------------------------------------------------------------- revisions
    def read_revision(self, rev: int) -> Revision:
        """Read and check one revision file."""
        rel = rev_name(rev)
        path = f"{self.url}/{rel}"
        data = self._packed(rev)
        if data is None:
            data = self._prefetched.get(rev)
        try:
            if data is None:
                data = self.files.read(rel, limit=self._revision_limit())
        except FileNotFoundError:
            raise StoreCorruptedError(f"{path} is missing", path=path) from None
        revision = decode_revision(data, path, self.n_rows)
        if revision.number != rev:
            raise StoreCorruptedError(
                f"{path} holds revision {revision.number}, not {rev}: a file copied under "
                "another revision's name",
                path=path,
            )
        self._headers[rev] = revision.header
        self._sizes[rev] = revision.size
        return revision

    def _read_ahead(self, rev: int, snapshots: set[int]) -> None:
        """Before a walk reads ``rev``: fetch it and the files below it, back to a snapshot."""
        if self.files.remote and rev not in self._prefetched:
            self._prefetch(max((r for r in snapshots if r <= rev), default=-1), rev)

    def _prefetch(self, after: int, upto: int) -> None:
        """Read revision files ``after+1 .. upto`` in parallel (remote stores only).

        A chain of deltas is walked one parent at a time; on object storage each
        step is a request, so the files a walk is about to need (parents are
        almost always the previous number) are fetched together first. They stay
        until the next walk starts (revision files never change).
        """
        if not self.files.remote:
            return
        first = max(after + 1, upto - _PREFETCH + 1)
        wanted = [r for r in range(first, upto + 1) if r not in self._prefetched]
        if not wanted:
            return
        found = self.files.read_many([rev_name(r) for r in wanted], limit=self._revision_limit())
        for rev in wanted:
            data = found.get(rev_name(rev))
            if data is not None:
                self._prefetched[rev] = data

    def _revision_limit(self) -> int:
        return 64 * self.n_rows + (16 << 20)

    def header(self, rev: int) -> dict[str, Any]:
        """The header of a revision (cached: revision files never change)."""
        if rev not in self._headers:
            self.read_revision(rev)
        return self._headers[rev]

    def headers(self, upto: int) -> dict[int, dict[str, Any]]:
        """Headers of revisions ``0..upto`` that read back whole (damaged ones left out).

        Reads the history chunks (up to 256 revisions each, the newest one partial),
        then the few revision files after them; a chunk found missing, short or
        without its pack is written back for the next reader.
        """
        listed = {
            int(m.group(1)) for name in self.files.listdir("log") if (m := _LOG_NAME.match(name))
        }
        for block in range(upto // LOG_CHUNK + 1):
            first = block * LOG_CHUNK
            last = min(first + LOG_CHUNK - 1, upto)
            if block in listed and any(r not in self._headers for r in range(first, last + 1)):
                self._load_log(block)
        missing = [r for r in range(upto + 1) if r not in self._headers and r not in self._bad]
        found = self.files.read_many([rev_name(r) for r in missing], limit=self._revision_limit())
        for rev in missing:
            data = found.get(rev_name(rev))
            if data is None:
                continue
            path = f"{self.url}/{rev_name(rev)}"
            try:
                header, _ = unframe(data, path)
                if header.get("revision") != rev:
                    raise StoreCorruptedError(
                        f"{path} holds revision {header.get('revision')}, not {rev}", path=path
                    )
            except StoreCorruptedError as exc:
                if self._bad.get(rev) != exc.path:
                    self._bad[rev] = exc.path
                    warnings.warn(
                        f"{exc}; the history leaves it out", StoreCorruptionWarning, stacklevel=3
                    )
                continue
            self._headers[rev] = header
        for block in range(upto // LOG_CHUNK + 1):
            first = block * LOG_CHUNK
            last = min(first + LOG_CHUNK - 1, upto)
            if block in listed and block not in self._log_lengths:
                # its headers were at hand (read with the revisions): learn what the
                # chunk holds before judging it stale, or every reader rewrites it
                self._load_log(block, quiet=True)
            if last == first + LOG_CHUNK - 1:
                stale = block not in self._log_packed
            else:
                stale = self._log_lengths.get(block, 0) < last - first + 1 - LOG_TAIL_EVERY
            if stale:
                self._write_log(block, last)
        return {r: self._headers[r] for r in range(upto + 1) if r in self._headers}

    def header_block(self, block: int) -> None:
        """Load the headers of one block of 256 revisions (from its chunk when there is one)."""
        first = block * LOG_CHUNK
        if block in self._log_tried or all(
            r in self._headers for r in range(first, first + LOG_CHUNK)
        ):
            return
        self._log_tried.add(block)  # a partial or missing chunk: single files are read
        self._load_log(block, quiet=True)

    def block_sessions(self, block: int) -> set[str] | None:
        """The sessions that committed in a whole block of 256 revisions.

        Read from the block's history chunk; None when it has no readable whole chunk.
        """
        if block in self._block_sessions:
            return self._block_sessions[block]
        sessions: set[str] | None = None
        try:
            header, _, _ = self._read_chunk(block)
            listed = header.get("sessions")
            if isinstance(header.get("pack"), dict) and isinstance(listed, list):
                sessions = {str(x) for x in listed}
        except (FileNotFoundError, StoreCorruptedError):
            pass
        self._block_sessions[block] = sessions
        return sessions

    def _load_log(self, block: int, *, quiet: bool = False) -> None:
        try:
            entries, packed = self._read_log(block)
        except FileNotFoundError:
            return
        except (StoreCorruptedError, ValueError, KeyError, TypeError) as exc:
            if not quiet:
                warnings.warn(
                    f"{exc}; reading its revisions one by one", StoreCorruptionWarning, stacklevel=4
                )
            return
        for h in entries:
            self._headers.setdefault(int(h["revision"]), h)
        self._log_lengths[block] = len(entries)
        if packed:
            self._log_packed.add(block)

    def _read_chunk(self, block: int) -> tuple[dict[str, Any], memoryview, str]:
        """A block's history chunk: its header, payload and path."""
        return self._read_block_file(log_name(block), block)

    def _read_pack(self, block: int) -> tuple[dict[str, Any], memoryview, str]:
        """A block's pack of revision files: its header, payload and path."""
        return self._read_block_file(pack_name(block), block)

    def _read_block_file(self, rel: str, block: int) -> tuple[dict[str, Any], memoryview, str]:
        path = f"{self.url}/{rel}"
        data = self.files.read(rel, limit=64 * self.n_rows + (256 << 20))
        header, payload = unframe(data, path)
        if header.get("block") != block:
            raise StoreCorruptedError(f"{path} holds block {header.get('block')}", path=path)
        return header, payload, path

    def _read_log(self, block: int) -> tuple[list[dict[str, Any]], bool]:
        """The headers a chunk holds, and whether it packs its revisions too."""
        header, payload, path = self._read_chunk(block)
        size = int(header.get("headers_size", len(payload)))
        body = _decompress(payload[:size], int(header["raw_size"]), path)
        entries = json.loads(body)
        first = block * LOG_CHUNK
        if (
            not isinstance(entries, list)
            or not 0 < len(entries) <= LOG_CHUNK
            or any(
                not isinstance(h, dict) or h.get("revision") != first + i
                for i, h in enumerate(entries)
            )
        ):
            raise StoreCorruptedError(f"{path} does not hold revisions {first}...", path=path)
        return entries, isinstance(header.get("pack"), dict)

    def _write_log(self, block: int, last: int) -> None:
        """Write the history chunk of ``block`` up to revision ``last``.

        A whole block's chunk also packs its 256 revision files, so replaying a
        long stretch of old revisions reads one file instead of 256. A cache: no
        chunk is written over a damaged or unread revision, and a failure is
        ignored (the next reader writes it).
        """
        first = block * LOG_CHUNK
        entries = [self._headers.get(r) for r in range(first, last + 1)]
        if not entries or any(h is None for h in entries):
            return
        # what decoding a file needs stays in the file: the history keeps the rest
        slim = [{k: v for k, v in h.items() if k not in _FILE_ONLY} for h in entries]  # type: ignore[union-attr]
        body = json.dumps(slim, separators=(",", ":")).encode()
        heads = _compress(body)
        header: dict[str, Any] = {
            "block": block,
            "raw_size": len(body),
            "headers_size": len(heads),
            # who committed in this block: an undo scan skips blocks without its session
            "sessions": sorted({str(h.get("session", "")) for h in entries}),
        }
        if last == first + LOG_CHUNK - 1:
            rels = [rev_name(r) for r in range(first, last + 1)]
            found = self.files.read_many(rels, limit=self._revision_limit())
            blobs = [found.get(rel) for rel in rels]
            if any(b is None for b in blobs):
                return
            packed = b"".join(blobs)  # type: ignore[arg-type]
            body_packed = _compress(packed)
            pack = {
                "block": block,
                "raw_size": len(packed),
                "lengths": [len(b) for b in blobs],  # type: ignore[arg-type]
            }
            # The pack has its own file, written first, so history() and undo scans
            # read small chunks (a few KB, not the 256 revisions they do not need).
            try:
                self.files.write(pack_name(block), frame(pack, body_packed), durable=False)
            except (OSError, StoreError):
                return  # the next reader writes it
            header["pack"] = {"file": pack_name(block).rsplit("/", 1)[1]}
        try:
            self.files.write(log_name(block), frame(header, heads), durable=False)
        except (OSError, StoreError):
            return  # the next reader writes it
        self._log_lengths[block] = len(entries)
        if "pack" in header:
            self._log_packed.add(block)

    def _packed(self, rev: int) -> bytes | None:
        """A revision's file bytes from a loaded pack, if its block's pack is loaded."""
        pack = self._packs.get(rev // LOG_CHUNK)
        if pack is None:
            return None
        start, end = pack[0][rev % LOG_CHUNK], pack[0][rev % LOG_CHUNK + 1]
        return pack[1][start:end]

    def _load_packs(self, lo: int, hi: int) -> None:
        """Load the packs of the whole blocks between revisions ``lo`` and ``hi``."""
        for block in range(max(lo, 0) // LOG_CHUNK, hi // LOG_CHUNK + 1):
            if block in self._packs or (block + 1) * LOG_CHUNK - 1 > hi + LOG_CHUNK:
                continue
            try:
                header, payload, path = self._read_chunk(block)
                pack = header.get("pack")
                if not isinstance(pack, dict):
                    continue
                if "file" in pack:  # in its own file: its header and blob are there
                    pack, raw, path = self._read_pack(block)
                else:  # inside the chunk, after the headers (stores written before)
                    size = int(header["headers_size"])
                    raw = payload[size : size + int(pack["size"])]
                blob = _decompress(raw, int(pack["raw_size"]), path)
                lengths = [int(x) for x in pack["lengths"]]
                if len(lengths) != LOG_CHUNK or sum(lengths) != len(blob):
                    continue
            except (FileNotFoundError, StoreCorruptedError, KeyError, TypeError, ValueError):
                continue  # the single files are there
            self._packs[block] = (np.concatenate([[0], np.cumsum(lengths)]).tolist(), blob)

    def snapshot_numbers(self, *, fresh: bool = True) -> set[int]:
        """Revisions that have a snapshot file."""
        if fresh or self._snapshots is None:
            self._snapshots = {
                int(m.group(1))
                for name in self.files.listdir("snapshots")
                if (m := _SNAP_NAME.match(name))
            }
        return self._snapshots

    def read_snapshot(self, rev: int) -> State:
        """The state at ``rev`` from its snapshot file."""
        rel = snap_name(rev)
        path = f"{self.url}/{rel}"
        n = self.n_rows
        data = self.files.read(rel, limit=32 * n + (16 << 20))  # FileNotFoundError: removed
        header, payload = unframe(data, path)
        if header.get("revision") != rev:
            raise StoreCorruptedError(
                f"{path} holds revision {header.get('revision')}, not {rev}", path=path
            )
        if "fields" not in header:  # format 1: raw float64 weights
            if len(payload) != 8 * n:
                raise StoreCorruptedError(f"{path} does not hold {n} weights", path=path)
            return State(rev, np.frombuffer(payload, dtype="<f8").copy())
        try:
            body = memoryview(_decompress(payload, int(header["raw_size"]), path))
            fields: dict[str, np.ndarray] = {}
            offset = 0
            for meta in header["fields"]:
                size = int(meta["nbytes"])
                fields[meta["field"]] = decode_vector(meta, body[offset : offset + size], path)
                offset += size
            weights = fields["weight"]
            columns = tuple(int(c) for c in header.get("columns", []))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorruptedError(f"{path} is inconsistent", path=path) from exc
        labels = fields.get("label")
        if weights.size != n or (labels is not None and labels.size != n):
            raise StoreCorruptedError(f"{path} does not hold {n} rows", path=path)
        _check_finite_snapshot(weights, path)
        self._last_snapshot_size = len(data)
        return State(rev, weights, labels, columns)

    def _write_snapshot(self, state: State) -> None:
        fields = [("weight", state.weights)]
        if state.labels is not None:
            fields.append(("label", state.labels.astype("<i4", copy=False)))
        metas, blobs = [], []
        for name, values in fields:
            meta, blob = encode_vector(values)
            metas.append({**meta, "field": name, "nbytes": len(blob)})
            blobs.append(blob)
        body = b"".join(blobs)
        header = {
            "revision": state.revision,
            "fields": metas,
            "columns": list(state.columns),
            "raw_size": len(body),
        }
        data = frame(header, _compress(body))
        self.files.write(snap_name(state.revision), data)
        self._last_snapshot_size = sum(len(p) for p in data)
        if self._snapshots is not None:
            self._snapshots.add(state.revision)
        self._chain_cost = 0.0

    # ----------------------------------------------------------------- states
    def state_at(self, rev: int, base_labels: Callable[[], np.ndarray]) -> State:
        """Rebuild the state at ``rev``.

        The nearest start on its parent chain (a snapshot, or a revision holding
        every row's weight) plus the deltas after it.

        A damaged snapshot is skipped in favour of an older one.
        """
        self._prefetched.clear()
        self._read_ahead(rev, self.snapshot_numbers(fresh=False))
        self.read_revision(rev)  # the revision file is the commit: it must read back whole
        snapshots_before = [s for s in self.snapshot_numbers(fresh=False) if s <= rev]
        nearest = max(snapshots_before, default=0)
        try:
            if rev - nearest > 32:  # a long replay: read whole blocks from their packs
                self._load_packs(nearest, rev)
            return self._state_at(rev, base_labels)
        finally:
            self._packs.clear()

    def _state_at(self, rev: int, base_labels: Callable[[], np.ndarray]) -> State:
        skip: set[int] = set()
        listed_afresh = False
        while True:
            snapshots = self.snapshot_numbers(fresh=False) - skip
            deltas: list[Revision] = []
            current: int | None = rev
            start: State | None = None
            while current is not None and current not in snapshots:
                self._read_ahead(current, snapshots)
                revision = self.read_revision(current)
                start = _self_contained(revision)
                if start is not None:
                    break
                deltas.append(revision)
                current = revision.parent
            if start is None:
                if current is None:
                    if not listed_afresh:  # a snapshot may have been written meanwhile
                        self.snapshot_numbers(fresh=True)
                        listed_afresh = True
                        continue
                    raise StoreCorruptedError(
                        f"{self.url}/{snap_name(0)}: no readable snapshot on the chain of "
                        f"revision {rev}",
                        path=f"{self.url}/{snap_name(0)}",
                    )
                try:
                    start = self.read_snapshot(current)
                except FileNotFoundError:  # removed by a compaction meanwhile
                    self.snapshot_numbers(fresh=True)
                    skip.add(current)
                    continue
                except StoreCorruptedError as exc:
                    self._report(current, exc)
                    skip.add(current)
                    continue
            cost = 0.0
            for delta in reversed(deltas):
                delta.apply(start, base_labels)
                cost += self.files.file_cost + delta.size
            self._chain_cost = cost
            return start

    def advance(self, state: State, to: int, base_labels: Callable[[], np.ndarray]) -> State | None:
        """Bring ``state`` forward to revision ``to`` in place, if ``state`` is on its chain.

        Returns ``state``, or None when ``to`` does not descend from it (then use
        :meth:`state_at`).
        """
        chain: list[Revision] = []
        current: int | None = to
        self._prefetched.clear()
        self._prefetch(state.revision, to)
        while current is not None and current > state.revision:
            revision = self.read_revision(current)
            chain.append(revision)
            current = revision.parent
        if current != state.revision:
            return None
        for revision in reversed(chain):
            revision.apply(state, base_labels)
            self._chain_cost += self.files.file_cost + revision.size
        return state

    def head_state(
        self,
        base_labels: Callable[[], np.ndarray],
        *,
        known: State | None = None,
        newest: int | None = None,
    ) -> State:
        """The newest revision that reads back whole, and its state.

        ``known`` is a state the caller holds (it is updated in place when the head
        descends from it). Damaged revision files are skipped with a
        :class:`StoreCorruptionWarning` naming the file; the head is then the newest
        revision whose chain is whole.
        """
        if newest is None:
            newest = self.newest_number()
        for rev in range(newest, -1, -1):
            if rev in self._bad:
                continue
            if known is not None and rev == known.revision:
                return known
            try:
                if known is not None and known.revision < rev:
                    advanced = self.advance(known, rev, base_labels)
                    if advanced is not None:
                        return advanced
                return self.state_at(rev, base_labels)
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

    # ----------------------------------------------------------------- commits
    def commit(
        self,
        number: int,
        parent: int,
        changes: list[Change],
        header: dict[str, Any],
        after: State,
    ) -> dict[str, Any]:
        """Write revision ``number`` exclusively; the commit happens when its file appears.

        Parameters
        ----------
        number : int
            The revision number to claim (the newest number + 1).
        parent : int
            The revision the changes were computed against.
        changes : list of Change
            What changed.
        header : dict
            Author, session, message, action, ...
        after : State
            The state after the changes (for a snapshot, when one is due).

        Returns
        -------
        dict
            The header written.

        Raises
        ------
        RevisionTaken
            Another writer claimed ``number`` first (or, on a store without a lock,
            a revision between ``parent`` and ``number``); nothing was written.
        OSError
            The revision file could not be written; nothing was committed and
            nothing is left behind.

        After the revision file is in place, the snapshot, history chunk and
        ``HEAD`` are written; if one of those fails the commit still stands and a
        :class:`StoreWriteWarning` says what was skipped.
        """
        if getattr(self.files, "lockless", False):
            # No lock spans the caller's refresh and this call: a revision that
            # landed in between would be overwritten by changes computed without it.
            between = [r for r in range(parent + 1, number) if r not in self._bad]
            if between:
                raise RevisionTaken(
                    f"revision {between[0]} was committed after revision {parent}, which "
                    "these changes were computed on"
                )
        self.upgrade()
        header = {**header, "revision": number, "parent": parent}
        self_contained = (
            any(c.field == "weight" and c.ids is None for c in changes)
            and after.labels is None
            and all(c.field == "weight" for c in changes)
        )
        if self_contained:  # readers may start here instead of at a snapshot
            header["start"] = {"columns": list(after.columns)}
        data = encode_revision(header, changes)
        try:
            self.files.write(rev_name(number), data, exclusive=True)
        except FileExistsError:
            raise RevisionTaken(f"revision {number} was committed by another writer") from None
        # ---- committed: from here on nothing may turn this into a failed commit
        self._headers[number] = header
        size = sum(len(p) for p in data)
        self._sizes[number] = size
        skipped: list[str] = []
        self._chain_cost = 0.0 if self_contained else self._chain_cost + self.files.file_cost + size
        after.revision = number
        if not self_contained and self._snapshot_due():
            try:
                self._write_snapshot(after)
                self._thin_snapshots(number)
            except (OSError, StoreError) as exc:
                skipped.append(f"its snapshot ({exc})")
        if number % LOG_TAIL_EVERY == LOG_TAIL_EVERY - 1:
            try:
                self.headers(number)  # reads what is missing; writes the chunk
            except (OSError, StoreError) as exc:
                skipped.append(f"the history chunk of revision {number} ({exc})")
        try:
            self._write_head(number)
        except (OSError, StoreError) as exc:
            skipped.append(f"the HEAD hint ({exc})")
        if skipped:
            warnings.warn(
                f"revision {number} is committed, but writing {' and '.join(skipped)} failed; "
                "the store stays correct (it is only slower to open until the next snapshot)",
                StoreWriteWarning,
                stacklevel=3,
            )
        return header

    def _snapshot_due(self) -> bool:
        """Whether replaying the deltas since the last snapshot costs more than a snapshot.

        Costs are in bytes read: a file costs its size plus :attr:`file_cost`
        (opening it); a snapshot costs its compressed size (the last one's, as an
        estimate), one byte per row to decode, and one file.
        """
        snapshot_cost = self.files.file_cost + self._last_snapshot_size + self.n_rows
        return self._chain_cost > snapshot_cost

    # ----------------------------------------------------------------- extra columns
    def write_column_file(self, parquet: bytes) -> dict[str, Any]:
        """Write the parquet bytes of a column set; return the reference a revision keeps."""
        self.files.makedirs("columns")
        rel = f"columns/c-{uuid.uuid4().hex[:16]}.parquet"
        self.files.write(rel, parquet)
        return {"file": rel, **_crc_entry(parquet)}

    def remove_column_file(self, ref: dict[str, Any]) -> None:
        """Remove a column file whose revision was never committed."""
        with contextlib.suppress(OSError, StoreError):
            self.files.remove(ref["file"])

    def read_column_file(self, ref: dict[str, Any], rev: int) -> bytes:
        """The parquet bytes a column revision refers to, checked."""
        rel = ref.get("file") if isinstance(ref, dict) else None
        where = f"{self.url}/{rev_name(rev)}"
        if not isinstance(rel, str) or not _COLUMNS_REL.match(rel):
            raise StoreCorruptedError(
                f"{where} refers to the column file {str(rel)[:200]!r}, outside columns/",
                path=where,
            )
        path = f"{self.url}/{rel}"
        try:
            blob = self.files.read(rel, limit=int(ref["size"]))
        except FileNotFoundError:
            raise StoreCorruptedError(f"{path} is missing", path=path) from None
        if len(blob) != ref["size"] or zlib.crc32(blob) != ref["crc32"]:
            raise StoreCorruptedError(
                f"{path} is corrupted: its checksum does not match", path=path
            )
        return blob

    def read_legacy_columns(self) -> list[tuple[dict[str, Any], bytes]]:
        """Column sets of format-1 stores (``columns/*.col``), oldest first."""
        out = []
        for name in sorted(self.files.listdir("columns")):
            if not name.endswith(".col") or name.startswith("."):
                continue
            rel = f"columns/{name}"
            try:
                header, payload = unframe(
                    self.files.read(rel, limit=64 * self.n_rows + (16 << 20)), f"{self.url}/{rel}"
                )
            except (StoreCorruptedError, FileNotFoundError) as exc:
                warnings.warn(
                    f"{exc}; these columns are skipped", StoreCorruptionWarning, stacklevel=3
                )
                continue
            out.append((header, bytes(payload)))
        return sorted(out, key=lambda item: item[0].get("created", 0))

    # ----------------------------------------------------------------- maintenance
    def compact(
        self, base_labels: Callable[[], np.ndarray], *, progress: bool = False
    ) -> dict[str, Any]:
        """Rewrite snapshots under the current policy; no revision's state changes.

        Keeps snapshots where they save replay work: the newest one, and older ones
        spaced so that each past revision is at most a bounded number of deltas
        from one (denser near the head, log-spaced further back). New snapshots are
        written (atomically) before old ones are removed, so a kill at any point
        leaves a store that opens at every revision. Also writes missing history
        chunks. Holds the writer lock.

        Returns
        -------
        dict
            ``snapshots_before``, ``snapshots_after``, ``bytes_before``,
            ``bytes_after`` (of snapshot files).
        """
        from tqdm.auto import tqdm

        with self.lock():
            newest = self.newest_number()
            headers = self.headers(newest)
            before = sorted(self.snapshot_numbers())
            bytes_before = sum(self._file_size(snap_name(r)) for r in before)
            current = [r for r in before if self._snapshot_is_current(r)]
            keep = keep_snapshots(current, newest) & set(current)
            keep |= {0, newest}
            # add snapshots only where the ones kept leave too long a replay
            kept = sorted(keep)
            last, j = 0, 0
            for rev in sorted(headers):
                while j < len(kept) and kept[j] <= rev:
                    last, j = kept[j], j + 1
                if rev - last > replay_bound(newest, rev):
                    keep.add(rev)
                    last = rev
            state: State | None = None
            written = 0
            bar = tqdm(total=len(keep), desc="compact", disable=not progress, unit="snapshot")
            for rev in sorted(keep):
                if rev in self._bad:
                    continue
                try:
                    if state is None or state.revision > rev:
                        state = self.state_at(rev, base_labels)
                    else:
                        advanced = self.advance(state, rev, base_labels)
                        state = (
                            advanced if advanced is not None else self.state_at(rev, base_labels)
                        )
                except StoreCorruptedError as exc:
                    self._report(rev, exc)
                    continue
                existing = rev in before and self._snapshot_is_current(rev)
                if not existing:
                    self._write_snapshot(state.copy())
                    written += 1
                bar.update(1)
            bar.close()
            self.snapshot_numbers(fresh=True)
            for rev in before:
                if rev not in keep and rev != 0:
                    self.files.remove(snap_name(rev))
            self.files.clean_temporary()
            after = sorted(self.snapshot_numbers())
            return {
                "snapshots_before": len(before),
                "snapshots_after": len(after),
                "snapshots_written": written,
                "bytes_before": bytes_before,
                "bytes_after": sum(self._file_size(snap_name(r)) for r in after),
            }

    def _snapshot_is_current(self, rev: int) -> bool:
        """Whether the snapshot of ``rev`` is in this format (compressed)."""
        try:
            data = self.files.read(snap_name(rev), limit=32 * self.n_rows + (16 << 20))
            header, _ = unframe(data, snap_name(rev))
        except (StoreCorruptedError, FileNotFoundError):
            return False
        return "fields" in header

    def _thin_snapshots(self, newest: int) -> None:
        """Remove snapshots that no longer save replay work (see :func:`keep_snapshots`)."""
        snapshots = sorted(self.snapshot_numbers(fresh=True))
        for rev in set(snapshots) - keep_snapshots(snapshots, newest):
            self.files.remove(snap_name(rev))
            self._snapshots.discard(rev)  # type: ignore[union-attr]

    def _file_size(self, rel: str) -> int:
        return self.files.size(rel)


def replay_bound(newest: int, rev: int) -> float:
    """How many deltas compaction lets opening revision ``rev`` replay.

    A quarter of its distance from the newest revision, plus 32.
    """
    return (newest - rev) / 4 + 32


def keep_snapshots(snapshots: list[int], newest: int) -> set[int]:
    """Which snapshots to keep as the history grows.

    0, the newest :data:`KEEP_NEWEST_SNAPSHOTS`, and older ones log-spaced (the
    newest snapshot in each quarter octave of distance from ``newest``), so their
    number grows with the log of the history's length.
    """
    ordered = sorted(snapshots)
    keep = {0, *ordered[-KEEP_NEWEST_SNAPSHOTS:]}
    best: dict[int, int] = {}
    for rev in ordered[:-KEEP_NEWEST_SNAPSHOTS]:
        bucket = int(4 * np.log2(max(newest - rev, 1)))
        best[bucket] = min(best.get(bucket, rev), rev)  # the oldest: it moves on first
    return keep | set(best.values())


def _self_contained(revision: Revision) -> State | None:
    """The state a revision holds on its own (every weight, no label edits before it)."""
    if not revision.full:
        return None
    start = revision.header.get("start")
    if revision.header.get("format") == 2 and not isinstance(start, dict):
        return None  # labels had been edited: the weights alone are not the whole state
    weights = revision.change("weight").values.copy()  # type: ignore[union-attr]
    columns = tuple(int(c) for c in (start or {}).get("columns", []))
    return State(revision.number, weights, None, columns)


def _check_finite_snapshot(weights: np.ndarray, path: str) -> None:
    if weights.size and not (np.isfinite(weights).all() and weights.min() >= 0):
        raise StoreCorruptedError(f"{path} holds weights that are not finite and >= 0", path=path)


def _meta_checksum(meta: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
