"""A team store on S3-compatible object storage, against a real server (SeaweedFS).

Everything goes through the public API (``store="s3://bucket/prefix"``); other
processes are started with ``spawn``. Requests are counted with botocore's event
hooks on a session passed as ``storage_options={"session": ...}``.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest

import weightwidget as ww
from weightwidget.errors import ReadOnlyTableError, StoreError

from . import workers
from .workers import N_ROWS, SHARED


def _table(url: str, **kwargs: Any) -> ww.WeightTable:
    data = workers.table_data(0)
    return ww.WeightTable.from_arrays(labels=data["labels"], store=url, loss=data["loss"], **kwargs)


class RequestLog:
    """An aiobotocore session that counts the S3 requests sent through it."""

    def __init__(self) -> None:
        from aiobotocore.session import get_session

        self.session = get_session()
        self.sent: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._guard = threading.Lock()
        self.session.register("before-send.s3", self._before)
        self.session.register("response-received.s3", self._after)

    def _before(self, request: Any, **kwargs: Any) -> None:
        with self._guard:
            self.sent.append(f"{request.method} {request.url.split('?')[0].rsplit('/', 2)[-2:]}")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _after(self, **kwargs: Any) -> None:
        with self._guard:
            self.in_flight -= 1

    @property
    def options(self) -> dict[str, Any]:
        return {"session": self.session}

    def count(self, fn: Any) -> int:
        before = len(self.sent)
        fn()
        return len(self.sent) - before


def _collect(q: Any, n: int, timeout: float = 180) -> list[tuple]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        try:
            out.append(q.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail(f"only {len(out)} of {n} worker results arrived in {timeout:.0f} s: {out}")
    errors = [item for item in out if item[0] == "error"]
    assert not errors, "\n".join(str(e) for e in errors)
    return out


# ------------------------------------------------------------------ one process
def test_create_open_edit_history_undo_redo_columns_and_past_revisions(s3_url):
    t = _table(s3_url, name="team")
    assert t.revision == 0 and t.store_url == s3_url
    r1 = t.set_weights("label == 1", 0.5, message="halve class 1")
    r2 = t.scale_weights([0, 1, 2], 3.0)
    r3 = t.balance("balanced")
    assert (r1, r2, r3) == (1, 2, 3)
    after_balance = t.weights.copy()
    assert t.undo() == 4
    np.testing.assert_array_equal(t.weights, ww.WeightTable.open(s3_url).weights_at(2))
    assert t.redo() == 5
    np.testing.assert_array_equal(t.weights, after_balance)
    rc = t.set_columns({"r1_loss": np.linspace(0, 1, N_ROWS)}, message="metrics of r1")
    assert rc == 6

    again = ww.WeightTable.open(s3_url)
    assert again.revision == 6
    np.testing.assert_array_equal(again.weights, after_balance)
    np.testing.assert_allclose(again.column("r1_loss"), np.linspace(0, 1, N_ROWS))
    history = again.history()
    assert history.revision.tolist() == list(range(7))
    assert history.message[1] == "halve class 1"
    assert history.message[6] == "metrics of r1"
    assert history.parent.tolist()[1:] == list(range(6))

    past = ww.WeightTable.open(s3_url, revision=1)
    assert past.revision == 1
    expected = np.where(workers.table_data(0)["labels"] == 1, 0.5, 1.0)
    np.testing.assert_array_equal(past.weights, expected)
    assert "r1_loss" not in past.columns
    with pytest.raises(ReadOnlyTableError):
        past.set_weights([0], 2.0)
    diff = again.diff(1, 2)
    assert diff.index.tolist() == [0, 1, 2]


def test_reuse_keeps_curated_weights_and_overwrite_starts_afresh(s3_url):
    t = _table(s3_url)
    t.set_weights([5], 0.0)
    reused = _table(s3_url)
    assert reused.revision == 1 and reused.weights[5] == 0.0
    fresh = _table(s3_url, if_exists="overwrite")
    assert fresh.revision == 0 and fresh.weights[5] == 1.0
    assert ww.WeightTable.open(s3_url).history().revision.tolist() == [0]


def test_storage_options_instead_of_environment(s3_server, monkeypatch):
    for key in s3_server.env:
        monkeypatch.delenv(key)
    url = s3_server.url("options")
    t = _table(url, storage_options=s3_server.storage_options)
    t.set_weights([3], 2.0)
    other = ww.WeightTable.open(url, storage_options=s3_server.storage_options)
    assert other.revision == 1 and other.weights[3] == 2.0


def test_missing_bucket_is_named_with_the_fix(s3_server):
    with pytest.raises(StoreError, match=r"bucket 'no-such-bucket-ww' does not exist.*aws s3 mb"):
        _table("s3://no-such-bucket-ww/t")


def test_storage_options_with_a_local_folder_are_refused(tmp_path):
    with pytest.raises(ValueError, match="storage_options apply to fsspec URLs"):
        _table(str(tmp_path / "s"), storage_options={"key": "x"})


def test_creator_killed_before_meta_json_is_finished_by_the_next(s3_server, s3_url):
    import s3fs

    t = _table(s3_url)
    # the state a creator killed right after claiming revision 0 leaves: no meta.json
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.rm(f"{s3_url.removeprefix('s3://')}/meta.json")
    with pytest.raises(StoreError, match="no weightwidget store"):
        ww.WeightTable.open(s3_url)
    again = _table(s3_url)
    assert again.revision == 0
    np.testing.assert_array_equal(again.weights, t.weights)
    assert (
        len({path.split("/")[-2] for path in fs.find(f"{s3_url.removeprefix('s3://')}/base")}) == 1
    )
    assert ww.WeightTable.open(s3_url).history().revision.tolist() == [0]


# ------------------------------------------------------------------ requests
def test_latest_when_nothing_changed_costs_two_requests_however_long_the_history(s3_url):
    log = RequestLog()
    t = _table(s3_url, storage_options=log.options)
    reader = ww.WeightTable.open(s3_url, storage_options=log.options)
    costs = []
    for target in (3, 150):
        while t.revision < target:
            t.set_weights([t.revision % N_ROWS], 2.0)
        reader.latest()
        assert reader.revision == target
        costs.append(log.count(reader.latest))
        assert log.count(reader.latest) == costs[-1]
    assert costs == [2, 2], log.sent[-4:]
    # one new commit: a few hint reads and probes (the table looks three times), the delta
    t.set_weights([7], 3.0)
    assert log.count(reader.latest) <= 8
    assert reader.weights[7] == 3.0


def test_a_stale_head_costs_a_logarithmic_number_of_probes(s3_server, s3_url):
    import s3fs

    log = RequestLog()
    t = _table(s3_url, storage_options=log.options)
    for k in range(100):
        t.set_weights([k], 2.0)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.pipe_file(f"{s3_url.removeprefix('s3://')}/HEAD", json.dumps({"revision": 3}).encode())
    reader = ww.WeightTable.open(s3_url, revision=3, storage_options=log.options)
    fresh = ww.WeightTable.open(s3_url, storage_options=log.options)
    assert fresh.revision == 100
    newest_cost = log.count(lambda: fresh._store.newest_number())
    assert newest_cost <= 2 + 2 * 7 + 1, log.sent[-newest_cost:]  # HEAD + gallop + bisect
    assert reader.revision == 3


def test_history_and_opening_read_revision_files_in_parallel(s3_server, s3_url):
    import s3fs

    log = RequestLog()
    t = _table(s3_url)
    for k in range(60):
        t.set_weights([k], 2.0)
    opened = ww.WeightTable.open(s3_url, storage_options=log.options)
    log.max_in_flight = 0
    history = opened.history()  # 61 headers, no history chunk yet (one per 256)
    assert history.revision.tolist() == list(range(61))
    assert log.max_in_flight >= 8, f"at most {log.max_in_flight} requests were in flight"
    # no snapshot (writers killed before writing them): open replays all 60 deltas
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    fs.rm(f"{s3_url.removeprefix('s3://')}/snapshots", recursive=True)
    log.max_in_flight = 0
    replayed = ww.WeightTable.open(s3_url, storage_options=log.options)
    assert replayed.revision == 60
    np.testing.assert_array_equal(replayed.weights, t.weights)
    assert log.max_in_flight >= 8, f"at most {log.max_in_flight} requests were in flight"


def test_a_retried_commit_whose_answer_was_lost_is_applied_once(s3_url):
    """botocore resends a PUT when the answer is lost; the second one finds the first."""
    log = RequestLog()
    resent = []

    def lose_first_answer(response: Any, request_dict: Any, attempts: int, **kwargs: Any) -> Any:
        is_revision = "/revisions/" in request_dict["url"]
        if is_revision and attempts == 1 and response is not None and not resent:
            if response[0].status_code == 200:
                resent.append(request_dict["url"])
                return 0.01  # "retry": the object was created, the client did not hear it
        return None

    log.session.register("needs-retry.s3.PutObject", lose_first_answer)
    t = _table(s3_url, storage_options=log.options)
    rev = t.scale_weights([4], 2.0)
    assert resent, "the lost answer was not simulated"
    assert rev == 1
    reopened = ww.WeightTable.open(s3_url)
    assert reopened.revision == 1 and reopened.weights[4] == 2.0


def test_a_server_ignoring_conditional_writes_is_refused(s3_server, s3_url):
    log = RequestLog()

    def drop_condition(params: dict, **kwargs: Any) -> None:
        params.pop("IfNoneMatch", None)  # what a server without conditional writes does

    log.session.register("before-parameter-build.s3.PutObject", drop_condition)
    with pytest.raises(StoreError, match="does not enforce conditional writes"):
        _table(s3_url, storage_options=log.options)


# ------------------------------------------------------------------ several processes
def _commit_in_child(t: ww.WeightTable, out: Any) -> None:
    try:
        out.put(("done", t.set_weights([9], 5.0)))
    except BaseException as exc:
        out.put(("error", repr(exc)))


def test_a_table_used_before_a_fork_works_in_the_forked_child(s3_url):
    """fork copies the table but not the event loop its S3 client ran on."""
    import multiprocessing as mp

    t = _table(s3_url)
    t.set_weights([8], 4.0)  # the async client has been used in this process
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_commit_in_child, args=(t, out))
    p.start()
    try:
        result = _collect(out, 1, timeout=60)[0]
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
    assert result == ("done", 2)
    assert t.latest().revision == 2 and t.weights[9] == 5.0 and t.weights[8] == 4.0


def test_two_writers_interleaved_lose_nothing_and_a_reader_sees_every_commit(s3_url):
    edits = 25
    _table(s3_url)
    ctx = workers.context()
    out, start, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(target=workers.writer, args=(s3_url, w, edits, start, out)) for w in (0, 1)
    ]
    reader_out = ctx.Queue()
    procs.append(ctx.Process(target=workers.reader, args=(s3_url, start, stop, reader_out)))
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let every process import and open the table
        start.set()
        done = _collect(out, 2)
        stop.set()
        _, seen, revisions, parents, every = _collect(reader_out, 1)[0]
    finally:
        stop.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()

    total = 2 * edits
    assert sorted(r for _, _, r in done)[-1] == total
    t = ww.WeightTable.open(s3_url)
    assert t.revision == total
    # every edit landed exactly once: its own row doubled once, the shared row 2**total
    for w in (0, 1):
        for k in range(edits):
            assert t.weights[workers.own_row(w, k)] == 2.0
    assert t.weights[SHARED] == 2.0**total
    untouched = np.ones(N_ROWS, dtype=bool)
    untouched[[workers.own_row(w, k) for w in (0, 1) for k in range(edits)] + [SHARED]] = False
    assert (t.weights[untouched] == 1.0).all()
    history = t.history()
    assert history.revision.tolist() == list(range(total + 1))
    assert history.parent.tolist()[1:] == list(range(total))
    messages = Counter(history.message[1:])
    assert messages == Counter(f"w{w} edit {k}" for w in (0, 1) for k in range(edits))
    assert set(history.author[1:]) == {"writer-0", "writer-1"}
    # the reader: whole states only, in order, ending at the last commit; all in its history
    assert seen[-1] == (total, 2.0**total)
    assert all(value == 2.0**rev for rev, value in seen)
    assert [rev for rev, _ in seen] == sorted(rev for rev, _ in seen)
    assert revisions == list(range(total + 1)) and parents[1:] == list(range(total))
    assert every == [2.0**r for r in range(total + 1)]


def test_compaction_beside_a_writer_in_another_process_keeps_every_revision(s3_url):
    t = _table(s3_url)
    for k in range(40):  # a history with snapshots to thin
        t.scale_weights([SHARED], 2.0, message=f"here {k}")
    ctx = workers.context()
    out, start = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=workers.writer, args=(s3_url, 0, 20, start, out))
    p.start()
    try:
        time.sleep(1.0)
        start.set()
        reports = [t.compact(progress=False) for _ in range(2)]
        _collect(out, 1)
    finally:
        p.join(60)
    assert all(r["snapshots_after"] >= 1 for r in reports)
    fresh = ww.WeightTable.open(s3_url)
    assert fresh.revision == 60
    for rev in range(61):  # every revision rebuilds exactly (the shared row doubles each time)
        assert fresh.weights_at(rev)[SHARED] == 2.0**rev


@pytest.mark.slow
def test_a_writer_killed_mid_commit_leaves_the_previous_or_the_new_revision(s3_url):
    _table(s3_url)
    ctx = workers.context()
    rng = random.Random(0)
    for _round in range(4):
        committed = ctx.Value("q", -1, lock=False)
        p = ctx.Process(target=workers.endless_writer, args=(s3_url, committed))
        p.start()
        deadline = time.monotonic() + 120
        floor = ww.WeightTable.open(s3_url).revision
        while committed.value < floor + 3 and time.monotonic() < deadline and p.is_alive():
            time.sleep(0.005)
        assert p.is_alive(), "the writer died on its own"
        time.sleep(rng.uniform(0, 0.08))
        p.kill()  # SIGKILL, somewhere in a commit
        p.join(30)
        last = committed.value
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no damaged file may be reported
            t = ww.WeightTable.open(s3_url)
        assert t.revision in (last, last + 1), (t.revision, last)
        assert t.weights[SHARED] == 2.0**t.revision
        assert t.history().revision.tolist() == list(range(t.revision + 1))
        # the next writer continues from there
        assert t.scale_weights([SHARED], 2.0) == t.revision
        assert t.weights[SHARED] == 2.0**t.revision


def test_four_processes_creating_one_table_end_with_one_table(s3_server, s3_url):
    import s3fs

    ctx = workers.context()
    out, start = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=workers.creator, args=(s3_url, 0, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)
        start.set()
        results = _collect(out, 4)
    finally:
        for p in procs:
            p.join(60)
    assert [r[:3] for r in results] == [("ok", 0, 0)] * 4
    assert {r[3] for r in results} == {float(N_ROWS)}
    assert {r[4] for r in results} == {1}  # one revision in every creator's history
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **s3_server.storage_options)
    root = s3_url.removeprefix("s3://")
    # the losers removed their base files (objects: SeaweedFS may list empty "folders")
    tokens = {path.split("/")[-2] for path in fs.find(f"{root}/base")}
    assert len(tokens) == 1, tokens
    assert fs.ls(f"{root}/revisions", detail=False, refresh=True) == [
        f"{root}/revisions/r000000000000.rev"
    ]
    t = ww.WeightTable.open(s3_url)
    assert t.revision == 0 and t.history().revision.tolist() == [0]


def test_creators_with_different_data_one_wins_the_other_is_told(s3_url):
    ctx = workers.context()
    out, start = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=workers.creator, args=(s3_url, s, start, out)) for s in (1, 2)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)
        start.set()
        results = []
        for _ in range(2):
            results.append(out.get(timeout=180))
    finally:
        for p in procs:
            p.join(60)
    outcomes = sorted(r[0] for r in results)
    assert outcomes == ["error", "ok"], results
    error = next(r for r in results if r[0] == "error")
    assert error[2] == "StoreMismatchError", error
    winner = next(r for r in results if r[0] == "ok")[1]
    t = ww.WeightTable.open(s3_url)
    np.testing.assert_array_equal(t.labels, workers.table_data(winner)["labels"])


def test_a_live_sampler_in_another_process_picks_up_a_commit(s3_url):
    pytest.importorskip("torch")
    t = _table(s3_url)
    ctx = workers.context()
    out, ready = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=workers.live_sampler, args=(s3_url, ready, out))
    p.start()
    try:
        assert ready.wait(120), "the sampler process did not start"
        first = _collect(out, 1)[0]
        assert first == ("ready", 0, True)
        rev = t.set_weights("label == 0", 0.0, message="exclude class 0")
        moved = _collect(out, 1)[0]
    finally:
        p.join(60)
        if p.is_alive():
            p.kill()
    assert moved[0] == "moved" and moved[1] == rev
