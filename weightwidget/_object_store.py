"""The revision store on S3-compatible object storage (``s3://bucket/prefix``).

Object stores have no rename, no hard link and no lock, so the local store's
protocol (link a temporary file into place under a file lock) does not carry
over. This backend relies on two properties instead, which Amazon S3 and the
usual S3-compatible servers (SeaweedFS, MinIO, Cloudflare R2, ...) provide:

- **strong read-after-write consistency**: once a PUT has returned, every GET,
  HEAD and LIST of every client sees the whole object;
- **conditional create**: a PUT with ``If-None-Match: *`` fails (HTTP 412) when
  the key exists, and of several concurrent ones exactly one succeeds.

The protocol
------------
- **Commit** = one conditional create of ``revisions/r{N:012d}.rev``. The writer
  that creates it has committed revision N; every other writer gets
  :class:`~weightwidget.store.RevisionTaken`, re-reads the newest revision and
  re-runs its edit on top of it, claiming N+1 (``WeightTable._commit``). No lock
  is taken: :meth:`S3Files.lock` only serialises the threads of one process, so
  they do not race each other for numbers. A PUT whose response was lost and
  that the client retried finds its own object in place: the bytes are compared
  and the commit stands (it is never applied twice).
- **HEAD** (``{"revision": N}``) is written with a plain PUT after each commit.
  It is a hint only: readers check it and probe forward (a gallop and a
  bisection over HEAD requests), so a HEAD that is stale, because a slower
  writer overwrote a newer one or a writer died before writing it, costs a few
  requests, never a missed revision.
- **Creation**: the base files go under a fresh ``base/<token>/``; then revision 0
  is created conditionally, holding the initial weights and the whole of
  ``meta.json``; then ``meta.json`` is created conditionally from it. Revision 0
  decides which creator won; ``meta.json`` is the point from which the store
  opens. A creator that loses removes its base files and reuses the winner's
  store. A creator killed between the two leaves a store that the next creator
  (or :meth:`RevisionStore.create`) finishes from revision 0, without waiting.
- Snapshots, history chunks and column files have deterministic or unique names,
  so they are written with plain PUTs.
- Reads of many objects (the deltas since a snapshot, the headers for a history)
  go out in parallel, :data:`CONCURRENCY` at a time.

What each party sees
--------------------
- **Two writers**: every edit of both lands exactly once, in one linear history
  without gaps, ordered by when each revision object was created; an edit is
  applied to the weights as they were at the revision below it (a scale
  multiplies the other writer's result, a set overwrites it).
- **A reader** (``open``, ``latest()``) sees a commit as soon as the writer's PUT
  has returned, and never part of one (a PUT is all or nothing, and every file
  carries a checksum). ``latest()`` when nothing changed costs two requests.
- **A writer killed** (SIGKILL, power loss) mid-commit leaves the store at the
  previous revision (its revision PUT did not complete) or at the new one (it
  did); the next writer continues from there. Objects written before the
  revision (the column file of a ``set_columns``) may stay unreferenced.
- **A live sampler in another process** re-reads at the start of each epoch and
  samples from the newest revision committed before that moment; an epoch in
  progress keeps its weights.

Not guaranteed
--------------
- Servers that ignore ``If-None-Match`` would let two writers overwrite each
  other's commits silently; the first conditional write of each process to a
  bucket checks that the server refuses a second create of an object and raises
  :class:`~weightwidget.errors.StoreError` if it does not. A server that is only
  eventually consistent is not detected: there a reader may see commits late.
- Deleting a store (``if_exists="overwrite"``) while other processes use it.
  (``compact()`` beside writers is safe: snapshots are caches, revision 0 holds
  the initial weights and every later revision its changes.)
- ``created`` times come from each writer's clock; revision numbers give the order.
- A killed upload of a base file larger than 100 MB leaves an incomplete
  multipart upload until a bucket lifecycle rule aborts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from .errors import StoreCorruptedError, StoreError

__all__ = ["CONCURRENCY", "S3Files"]

#: Requests in flight at once when reading many objects.
CONCURRENCY = 32
#: Buckets checked to refuse a second conditional create, per filesystem (its
#: options: endpoint, credentials, session).
_CHECKED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_CHECKED_GUARD = threading.Lock()
# Object stores answer a conditional PUT that races another one with 409; retry it.
_CONFLICT_RETRIES = 8


def _error_code(exc: BaseException) -> tuple[str, int]:
    """The S3 error code and HTTP status behind an s3fs exception (``("", 0)`` if none)."""
    for err in (exc, exc.__cause__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            return code, status
    return "", 0


def _is_missing(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return isinstance(exc, FileNotFoundError) or status == 404 or code in ("NoSuchKey", "404")


def _is_precondition_failed(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return status == 412 or code == "PreconditionFailed"


def _is_conflict(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return status == 409 or code == "ConditionalRequestConflict"


class _CrcSink(io.RawIOBase):
    """A write-only file object that checksums what passes through to ``inner``."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self._inner = inner
        self.crc = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self.size += len(view)
        self._inner.write(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:  # the owner closes (or discards) the upload
        super().close()


class S3Files:
    """Files of a store on S3-compatible object storage, for several writing processes.

    The protocol and the consistency it gives are described in this module's
    docstring. Credentials, endpoint and region come from the usual places
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``,
    ``~/.aws``, instance roles) unless ``storage_options`` name them.

    Parameters
    ----------
    url : str
        ``s3://bucket`` or ``s3://bucket/prefix``.
    storage_options : dict, optional
        Keyword arguments of :class:`s3fs.S3FileSystem` (``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``, ``profile``, ...).
    """

    remote = True
    #: ``lock`` excludes this process's threads only; exclusive writes are atomic
    #: across processes, so :class:`~weightwidget.store.RevisionStore` creates
    #: stores without a lock.
    lockless = True
    #: What reading one more object costs, in bytes (the snapshot policy weighs
    #: replaying deltas against reading a snapshot with it): a request's latency
    #: (10-30 ms) at 100 MB/s is 1-3 MB, but the deltas of a chain are fetched
    #: :data:`CONCURRENCY` at a time, so one more costs about 1/32 of that.
    file_cost = 64 << 10

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        try:
            import s3fs
        except ImportError:
            raise ImportError(
                f"the store {url} is on S3, which needs s3fs: pip install 'weightwidget[s3]'"
            ) from None
        scheme, _, rest = url.partition("://")
        self.root = rest.strip("/")
        self.bucket, _, self.prefix = self.root.partition("/")
        if not self.bucket:
            raise ValueError(f"an S3 store URL needs a bucket: s3://bucket/prefix; got {url!r}")
        self.url = f"{scheme}://{self.root}"
        options = dict(storage_options or {})
        config = dict(options.pop("config_kwargs", None) or {})
        config.setdefault("max_pool_connections", CONCURRENCY)
        self._options = {**options, "config_kwargs": config}
        # instances are cached by fsspec per (options, process, thread): cheap to make
        self._fs = s3fs.S3FileSystem(**self._options)
        self._pid = os.getpid()
        self._present: set[str] = set()  # revision objects seen: they never go away
        self._bucket_checked = False

    @property
    def fs(self) -> Any:
        """The s3fs filesystem of this process.

        A forked child gets a client of its own: the parent's event loop does not
        run there.
        """
        if os.getpid() != self._pid:
            import s3fs

            self._fs = s3fs.S3FileSystem(**self._options)
            self._pid = os.getpid()
        return self._fs

    # ----------------------------------------------------------------- names
    def key(self, rel: str) -> str:
        """The object key of a store file (``prefix/rel``)."""
        from ._files import _check_rel

        _check_rel(rel)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def path(self, rel: str) -> str:
        """``bucket/key`` of a store file, as s3fs names it."""
        return f"{self.bucket}/{self.key(rel)}"

    def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, fn, *args, **kwargs)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await self.fs._call_s3(method, Bucket=self.bucket, **kwargs)

    def check_folders(self) -> None:
        """Nothing to check: object stores have no folders, hence no linked ones."""
        return None

    # ----------------------------------------------------------------- reads
    async def _get(self, rel: str, limit: int | None) -> bytes | None:
        try:
            response = await self._call("get_object", Key=self.key(rel))
        except OSError as exc:
            if _is_missing(exc):
                return None
            raise
        body = response["Body"]
        try:
            size = response.get("ContentLength")
            if limit is not None and size is not None and size > limit:
                raise StoreCorruptedError(
                    f"{self.url}/{rel} is {size:,} bytes, more than the {limit:,} it can hold",
                    path=f"{self.url}/{rel}",
                )
            data = await body.read()
        finally:
            body.close()
        if rel.startswith("revisions/"):
            self._present.add(rel)
        return bytes(data)

    async def _head(self, rel: str) -> dict[str, Any] | None:
        try:
            return await self._call("head_object", Key=self.key(rel))
        except OSError as exc:
            if _is_missing(exc):
                return None
            raise

    def exists(self, rel: str) -> bool:
        """Whether the object exists (one HEAD request; revisions seen once are cached)."""
        if rel in self._present:
            return True
        found = self._run(self._head, rel) is not None
        if found and rel.startswith("revisions/"):
            self._present.add(rel)  # a revision object is never removed or replaced
        return found

    def read(self, rel: str, *, limit: int | None = None) -> bytes:
        """The object's bytes (one GET); FileNotFoundError when it does not exist."""
        data = self._run(self._get, rel, limit)
        if data is None:
            raise FileNotFoundError(f"{self.url}/{rel}")
        return data

    def read_many(self, rels: list[str], *, limit: int | None = None) -> dict[str, bytes | None]:
        """Several objects fetched in parallel; None for those that do not exist."""
        if not rels:
            return {}
        return self._run(self._get_many, list(rels), limit)

    async def _get_many(self, rels: list[str], limit: int | None) -> dict[str, bytes | None]:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(rel: str) -> bytes | None:
            async with gate:
                return await self._get(rel, limit)

        results = await asyncio.gather(*(one(rel) for rel in rels))
        return dict(zip(rels, results, strict=True))

    def size(self, rel: str) -> int:
        """The object's size in bytes, 0 when it does not exist."""
        head = self._run(self._head, rel)
        return 0 if head is None else int(head.get("ContentLength", 0))

    def listdir(self, rel: str) -> list[str]:
        """Names directly under ``rel`` (objects and sub-prefixes), [] when none."""
        base = self.key(rel) if rel else self.prefix
        return self._run(self._list, f"{base}/" if base else "", "/")

    async def _list(self, prefix: str, delimiter: str) -> list[str]:
        names: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix}
            if delimiter:
                kwargs["Delimiter"] = delimiter
            if token:
                kwargs["ContinuationToken"] = token
            try:
                page = await self._call("list_objects_v2", **kwargs)
            except OSError as exc:
                if _is_missing(exc):  # no such bucket: nothing there
                    return []
                raise
            names += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
            names += [
                p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])
            ]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return [n for n in names if n]

    # ----------------------------------------------------------------- writes
    def makedirs(self, rel: str = "") -> None:
        """Object stores have no folders; checks once that the bucket exists."""
        if self._bucket_checked:
            return
        try:
            self._run(self.fs._call_s3, "head_bucket", Bucket=self.bucket)
        except OSError as exc:
            if _is_missing(exc):
                raise StoreError(
                    f"the bucket {self.bucket!r} does not exist (store {self.url}); create it "
                    f"first, e.g. `aws s3 mb s3://{self.bucket}`, or check AWS_ENDPOINT_URL_S3 "
                    "/ AWS_ENDPOINT_URL"
                ) from None
            raise
        self._bucket_checked = True

    def write(self, rel: str, data: Any, *, exclusive: bool = False, durable: bool = True) -> None:
        """Write an object; ``exclusive`` raises FileExistsError if it exists.

        Every completed PUT is durable on object storage, so ``durable`` changes nothing.

        An exclusive write is one PUT with ``If-None-Match: *``. A plain write
        of a large object goes up in parts; either way the object appears whole.
        """
        from ._files import joined

        body = joined(data)
        if exclusive:
            self.check_conditional_writes()
            self._run(self._put_exclusive, rel, body)
            if rel.startswith("revisions/"):
                self._present.add(rel)
        else:
            self._run(self.fs._pipe_file, self.path(rel), body)

    async def _put_exclusive(self, rel: str, body: bytes) -> None:
        for attempt in range(_CONFLICT_RETRIES):
            try:
                await self._call("put_object", Key=self.key(rel), Body=body, IfNoneMatch="*")
                return
            except OSError as exc:
                if _is_precondition_failed(exc):
                    # s3fs and botocore retry a PUT whose answer was lost: the object
                    # in place may be this very write, which then stands
                    try:
                        existing = await self._get(rel, len(body))
                    except StoreCorruptedError:  # larger: another writer's
                        existing = None
                    if existing == body:
                        return
                    raise FileExistsError(f"{self.url}/{rel}") from None
                if not _is_conflict(exc):
                    raise
            await asyncio.sleep(0.02 * 2**attempt)  # another conditional PUT was in flight
        raise StoreError(
            f"could not create {self.url}/{rel}: the server answered 409 (a concurrent "
            f"conditional write) {_CONFLICT_RETRIES} times; try again"
        )

    def check_conditional_writes(self) -> None:
        """Refuse a server that ignores ``If-None-Match`` (once per filesystem and bucket).

        Without it two writers would overwrite each other's revisions silently.
        """
        with _CHECKED_GUARD:
            if self.bucket in _CHECKED.get(self.fs, ()):
                return
        self._run(self.fs.set_session)
        endpoint = str(getattr(getattr(self.fs.s3, "meta", None), "endpoint_url", ""))
        probe = f"{self.prefix}/" if self.prefix else ""
        probe += f".weightwidget-check-{uuid.uuid4().hex}"
        enforced = self._run(self._probe_create, probe)
        if not enforced:
            raise StoreError(
                f"the object store at {endpoint or 'the default endpoint'} (bucket "
                f"{self.bucket!r}) does not enforce conditional writes (If-None-Match: *): "
                "two writers would overwrite each other's revisions. Use a server that "
                "does (Amazon S3, SeaweedFS, MinIO, Cloudflare R2), or keep the store in a "
                "local or shared folder"
            )
        with _CHECKED_GUARD:
            _CHECKED.setdefault(self.fs, set()).add(self.bucket)

    async def _probe_create(self, key: str) -> bool:
        await self.fs._call_s3("put_object", Bucket=self.bucket, Key=key, Body=b"1")
        try:
            await self.fs._call_s3(
                "put_object", Bucket=self.bucket, Key=key, Body=b"2", IfNoneMatch="*"
            )
        except OSError as exc:
            code, status = _error_code(exc)
            if _is_precondition_failed(exc):
                return True
            if status in (400, 501) or code == "NotImplemented":
                return False
            raise
        finally:
            with contextlib.suppress(OSError):
                await self.fs._call_s3("delete_object", Bucket=self.bucket, Key=key)
        return False

    def write_from(self, rel: str, produce: Callable[[Any], None]) -> dict[str, int]:
        """Stream an object that ``produce(fileobj)`` writes (in parts); return its crc/size.

        Memory stays at one part; a failure aborts the upload, so nothing appears.
        """
        upload = self.fs.open(self.path(rel), "wb", block_size=16 << 20)
        sink = _CrcSink(upload)
        try:
            produce(sink)
        except BaseException:
            upload.discard()
            raise
        upload.close()
        return {"crc32": sink.crc, "size": sink.size}

    def remove(self, rel: str) -> None:
        """Delete an object (no error when it does not exist)."""
        self._present.discard(rel)
        try:
            self._run(self._call, "delete_object", Key=self.key(rel))
        except OSError as exc:
            if not _is_missing(exc):
                raise

    def remove_tree(self) -> None:
        """Delete every object under the store's prefix (never the bucket itself)."""
        self._present.clear()
        self._run(self._remove_all)

    async def _remove_all(self) -> None:
        prefix = f"{self.prefix}/" if self.prefix else ""
        keys = [prefix + name for name in await self._list(prefix, "")]
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(key: str) -> None:
            async with gate:
                with contextlib.suppress(FileNotFoundError):
                    await self._call("delete_object", Key=key)

        await asyncio.gather(*(one(k) for k in keys))

    def clean_temporary(self) -> None:
        """Nothing to do: objects are never written under temporary names."""
        return None

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Serialise this process's writers (threads); other processes are not excluded.

        Correctness never depends on it (a revision number is claimed by a
        conditional create); it only saves this process's threads from racing
        each other for numbers.
        """
        from ._files import _process_lock

        with _process_lock(self.url):
            yield


def is_object_store_url(url: str) -> bool:
    """Whether ``url`` names a store this module handles (``s3://``, ``s3a://``)."""
    return os.fspath(url).startswith(("s3://", "s3a://"))
