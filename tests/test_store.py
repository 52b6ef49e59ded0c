"""The revision store: persistence across processes, concurrent writers, crashes,
corruption and format versions."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import weightwidget as ww
from weightwidget import store as store_mod
from weightwidget.errors import (
    StoreCorruptedError,
    StoreCorruptionWarning,
    StoreError,
    StoreFormatError,
)

from .conftest import ROOT, run_json, run_python


def _revision_file(store_path: str, rev: int) -> Path:
    return Path(store_path) / store_mod.rev_name(rev)


# ---------------------------------------------------------------- persistence


def test_reopen_in_a_new_process_gives_the_same_weights(table, store_path):
    table.set_weights("label == 3", 0)
    table.scale_weights("loss > 2", 2.5)
    table.balance("sqrt_inverse_frequency")
    got = run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        print(json.dumps({{"rev": t.revision, "w": t.weights.tolist(),
                           "msgs": t.history()["message"].tolist()}}))
    """)
    assert got["rev"] == table.revision == 3
    assert got["w"] == table.weights.tolist()  # bit-for-bit
    assert got["msgs"] == table.history()["message"].tolist()


def test_training_script_sees_what_the_notebook_left(frame, store_path):
    """The notebook edits; a script in another process opens the store (DESIGN step 6)."""
    t = ww.WeightTable.from_pandas(frame, label="label", name="nb", store=store_path)
    t.set_weights("caption contains 'cat' and label == 0", 0)
    got = run_json(f"""
        import json, numpy as np, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        print(json.dumps({{"zeros": np.flatnonzero(t.weights == 0).tolist()}}))
    """)
    assert got["zeros"] == np.flatnonzero(t.weights == 0).tolist()
    assert got["zeros"]


def test_latest_picks_up_another_process(table, store_path):
    seen = []
    table.subscribe(lambda t: seen.append(t.revision))
    run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        t.set_weights("label == 1", 7.0, message="from a script")
        print(json.dumps(t.revision))
    """)
    assert table.revision == 0
    assert table.latest() is table
    assert table.revision == 1
    assert (table.weights[table.labels == 1] == 7).all()
    assert seen == [1]
    assert table.history()["message"].iloc[-1] == "from a script"


def test_fsspec_memory_store(frame):
    t = ww.WeightTable.from_pandas(frame, label="label", store="memory://ww-test/a")
    t.set_weights("label == 4", 0)
    t2 = ww.WeightTable.open("memory://ww-test/a")
    np.testing.assert_array_equal(t2.weights, t.weights)
    assert t2.revision == 1
    assert t2.columns == t.columns


def test_added_columns_persist(table, store_path):
    table.set_columns(
        {
            "run1_loss": np.linspace(0, 1, len(table)),
            "run1_pred": np.array(["a", "b"] * (len(table) // 2)),
        }
    )
    t2 = ww.WeightTable.open(store_path)
    assert t2.columns[-2:] == ["run1_loss", "run1_pred"]
    np.testing.assert_allclose(t2.column("run1_loss"), np.linspace(0, 1, len(table)))
    assert t2.select("run1_pred == 'b' and run1_loss > 0.5").size > 0
    with pytest.raises(ValueError, match="reserved"):
        table.set_columns({"weight": np.zeros(len(table))})
    with pytest.raises(ValueError, match="has 3 rows"):
        table.set_columns({"short": [1, 2, 3]})


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no weightwidget store at .*meta.json is missing"):
        ww.WeightTable.open(tmp_path / "nothing")


# ---------------------------------------------------------------- size and snapshots


def test_a_small_edit_writes_bytes_proportional_to_the_change(tmp_path):
    n = 200_000
    t = ww.WeightTable.from_arrays(labels=np.arange(n) % 10, store=tmp_path / "s")
    rev_dir = tmp_path / "s" / "revisions"
    before = {p.name for p in rev_dir.iterdir()}
    t.set_weights(np.arange(0, 10_000, 100), np.linspace(0.1, 2, 100))
    new = [p for p in rev_dir.iterdir() if p.name not in before]
    assert len(new) == 1
    size = new[0].stat().st_size
    assert size < 2_000, size  # 100 ids (4 B) + 100 values (8 B) + a header
    t.set_weights(np.arange(0, 200_000, 2_000), 0.0)
    newest = max(rev_dir.iterdir(), key=lambda p: p.name)
    assert newest.stat().st_size < 1_000  # one value for all: ids only


def test_snapshots_keep_the_chain_short_and_cost_what_changed(tmp_path):
    n = 100_000
    t = ww.WeightTable.from_arrays(labels=np.arange(n) % 5, store=tmp_path / "s")
    for i in range(300):
        t.set_weights([i], 2.0)
    snaps = sorted((tmp_path / "s" / "snapshots").iterdir())
    assert len(snaps) >= 3  # replaying 300 deltas costs more than reading a snapshot
    # a snapshot of weights that are mostly 1.0 is compressed: far below 8 bytes a row
    assert max(p.stat().st_size for p in snaps) < n // 20
    st = store_mod.RevisionStore(str(tmp_path / "s"))
    st.read_meta()
    st.state_at(300, lambda: np.zeros(n, np.int32))
    # the chain replayed since the nearest snapshot is bounded by the policy
    assert st._chain_cost <= st.files.file_cost + st._last_snapshot_size + n + 20_000
    assert ww.WeightTable.open(tmp_path / "s").weights[:300].tolist() == [2.0] * 300


def test_a_large_edit_is_a_start_point_of_its_own(tmp_path):
    """An edit of most rows stores every weight, so opening it replays nothing."""
    t = ww.WeightTable.from_arrays(labels=np.arange(1000) % 5, store=tmp_path / "s")
    t.set_weights(slice(0, 600), np.linspace(0, 1, 600))
    st = store_mod.RevisionStore(str(tmp_path / "s"))
    st.read_meta()
    state = st.state_at(1, lambda: np.zeros(1000, np.int32))
    assert st._chain_cost == 0
    np.testing.assert_array_equal(state.weights, t.weights)


# ---------------------------------------------------------------- concurrency

WRITER = """
import sys, time, json
from pathlib import Path
import weightwidget as ww
path, me, go, count = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
t = ww.WeightTable.open(path, author=f"writer{me}")
while not go.exists():
    time.sleep(0.001)
for i in range(count):
    t.set_weights([me * 1000 + i], 3.0, message=f"w{me}-{i}")  # own rows
    t.scale_weights([0], 2.0, message=f"s{me}-{i}")             # a row both change
print(json.dumps(t.revision))
"""


def test_two_processes_committing_at_once_both_land(tmp_path):
    path = tmp_path / "s"
    ww.WeightTable.from_arrays(labels=np.arange(3000) % 3, store=path)
    go = tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    count = 40
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(me), str(go), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for me in (1, 2)
    ]
    time.sleep(1.5)  # both have imported and opened the store
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    t = ww.WeightTable.open(path)
    assert t.revision == 4 * count
    hist = t.history()
    assert sorted(hist["revision"]) == list(range(4 * count + 1))
    assert (hist["parent"].iloc[1:].to_numpy() == np.arange(4 * count)).all()  # one line
    # every edit landed: each process's rows, and 2 * count doublings of row 0
    assert (t.weights[1000 : 1000 + count] == 3).all()
    assert (t.weights[2000 : 2000 + count] == 3).all()
    assert t.weights[0] == 2.0 ** (2 * count)
    authors = set(hist["author"].iloc[1:])
    assert authors == {"writer1", "writer2"}


KILLED_WRITER = """
import sys, numpy as np, weightwidget as ww
t = ww.WeightTable.open(sys.argv[1])
n = len(t)
print("ready", flush=True)
k = int(t.history()["message"].iloc[-1].split("=")[-1]) if t.revision else 0
while True:
    k += 1
    # random weights do not compress: each commit writes megabytes, so kills land mid-write
    t.set_weights(None, k + np.random.default_rng(k).random(n), message=f"k={k}")
"""


@pytest.mark.slow
def test_sigkill_mid_commit_leaves_a_whole_revision(tmp_path):
    """Kill a writer at random moments, many times: the store always opens at a
    whole revision whose weights match its message."""
    path = tmp_path / "s"
    n = 600_000  # 4.8 MB written per commit, so kills often land mid-write
    ww.WeightTable.from_arrays(labels=np.arange(n) % 5, store=path)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_WRITER)
    rng = random.Random(1234)
    last_rev = 0
    kills = 0
    torn = 0  # kills that left a half-written temporary file behind
    # at least 25 kills, and on until 3 of them landed mid-write (at most 80)
    while kills < 25 or (torn < 3 and kills < 80):
        kills += 1
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        torn += any(p.name.startswith(".tmp-") for p in path.rglob("*"))
        t = ww.WeightTable.open(path)  # no warning: nothing half-written is visible
        assert t.revision >= last_rev
        last_rev = t.revision
        if t.revision:
            k = int(t.history()["message"].iloc[-1].split("=")[-1])
            np.testing.assert_array_equal(t.weights, k + np.random.default_rng(k).random(n))
    assert last_rev >= 10  # the writer made real progress between the kills
    assert torn >= 1, f"no kill of {kills} landed mid-write; the test proves too little"
    revs = ww.WeightTable.open(path).history()["revision"].tolist()
    assert revs == list(range(len(revs)))  # no gaps, no duplicates


# ---------------------------------------------------------------- corruption


def _edited_store(frame, store_path, edits=5):
    t = ww.WeightTable.from_pandas(frame, label="label", store=store_path)
    states = [t.weights.copy()]
    for i in range(edits):
        t.set_weights(f"label == {i % 5}", float(i + 2))
        states.append(t.weights.copy())
    return t, states


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete-tail"])
def test_damaged_newest_revision_is_reported_and_the_last_good_one_opens(frame, store_path, damage):
    _, states = _edited_store(frame, store_path)
    f = _revision_file(store_path, 5)
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        f.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        f.write_bytes(bytes(data))
    else:
        f.write_bytes(bytes(data[:-4]))
    with pytest.warns(StoreCorruptionWarning, match=r"r000000000005\.rev is corrupted"):
        t = ww.WeightTable.open(store_path)
    assert t.revision == 4
    np.testing.assert_array_equal(t.weights, states[4])


def test_damage_in_the_middle_opens_before_it_and_new_commits_continue(store_path):
    # 200,000 rows: a snapshot costs more than these five small deltas, so the chain
    # of revisions 4 and 5 runs through the damaged revision 3
    t = ww.WeightTable.from_arrays(labels=np.arange(200_000) % 5, store=store_path)
    states = [t.weights.copy()]
    for i in range(5):
        t.set_weights(f"label == {i % 5} and row < 50", float(i + 2))
        states.append(t.weights.copy())
    snaps = [p.name for p in (Path(store_path) / "snapshots").iterdir()]
    assert snaps == ["r000000000000.snap"]
    f = _revision_file(store_path, 3)
    f.write_bytes(f.read_bytes()[:20])
    with pytest.warns(StoreCorruptionWarning, match=r"r000000000003\.rev"):
        t = ww.WeightTable.open(store_path)
    assert t.revision == 2
    np.testing.assert_array_equal(t.weights, states[2])
    rev = t.set_weights([0], 9.0)  # reported once already: no second warning
    assert rev == 6  # numbers are never reused; its parent is the last good revision
    again = ww.WeightTable.open(store_path)  # the head's chain is whole again
    assert again.revision == 6
    with pytest.warns(StoreCorruptionWarning, match=r"r000000000003\.rev .*history leaves it out"):
        assert again.history()["revision"].tolist() == [0, 1, 2, 4, 5, 6]
    expected = states[2].copy()
    expected[0] = 9.0
    np.testing.assert_array_equal(again.weights, expected)


def test_damaged_snapshot_falls_back_to_an_older_one_losing_nothing(tmp_path):
    path = tmp_path / "s"
    t = ww.WeightTable.from_arrays(labels=np.arange(300) % 3, store=path)
    for i in range(40):
        t.set_weights([i], float(i + 2))
    snaps = sorted((path / "snapshots").iterdir())
    newest = snaps[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(StoreCorruptionWarning, match=newest.name):
        t2 = ww.WeightTable.open(path)
    assert t2.revision == 40
    np.testing.assert_array_equal(t2.weights, t.weights)


def test_corrupted_meta_is_reported_with_its_name(table, store_path):
    meta = Path(store_path) / "meta.json"
    text = meta.read_text()
    meta.write_text(text.replace('"n_rows": 1000', '"n_rows": 1001'))
    with pytest.raises(StoreCorruptedError, match="meta.json is corrupted: its checksum"):
        ww.WeightTable.open(store_path)
    meta.write_text(text[:50])
    with pytest.raises(StoreCorruptedError, match="meta.json is corrupted: not valid JSON"):
        ww.WeightTable.open(store_path)


def test_corrupted_base_columns_are_reported(table, store_path):
    (base,) = Path(store_path).glob("base/*/columns.parquet")
    data = bytearray(base.read_bytes())
    data[100] ^= 0x01
    base.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptedError, match="columns.parquet is corrupted or truncated"):
        ww.WeightTable.open(store_path)


def test_newer_format_is_refused_with_a_clear_message(table, store_path):
    meta_path = Path(store_path) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("checksum")
    meta["format_version"] = store_mod.FORMAT_VERSION + 1
    meta["checksum"] = store_mod._meta_checksum(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        StoreFormatError,
        match=f"store format {store_mod.FORMAT_VERSION + 1}, newer than this weightwidget reads "
        ".*pip install -U weightwidget",
    ):
        ww.WeightTable.open(store_path)


def test_leftover_temporary_files_are_ignored_and_cleaned(table, store_path):
    junk = Path(store_path) / "revisions" / ".tmp-r000000000001.rev-123-abc"
    junk.write_bytes(b"half a file")
    t = ww.WeightTable.open(store_path)
    assert t.revision == 0
    t.set_weights([0], 2.0)
    assert not junk.exists()
    assert ww.WeightTable.open(store_path).weights[0] == 2.0


def test_crash_during_creation_leaves_no_half_store(tmp_path, frame):
    """Everything but meta.json written: not a store yet; creating again works."""
    path = tmp_path / "s"
    code = textwrap.dedent(f"""
        import os, pandas as pd, numpy as np, weightwidget as ww
        from weightwidget import store
        real = store.RevisionStore._write_meta
        def die(self, meta):
            os._exit(9)
        store.RevisionStore._write_meta = die
        df = pd.DataFrame({{"label": np.arange(10) % 2}})
        ww.WeightTable.from_pandas(df, label="label", store={str(path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT)
    assert proc.returncode == 9
    assert (path / "revisions").exists() and not (path / "meta.json").exists()
    with pytest.raises(StoreError, match="meta.json is missing"):
        ww.WeightTable.open(path)
    import pandas as pd

    t = ww.WeightTable.from_pandas(
        pd.DataFrame({"label": np.arange(10) % 2}), label="label", store=path
    )
    assert t.revision == 0
    assert ww.WeightTable.open(path).revision == 0


def test_lock_timeout_names_the_lock_file(table, store_path):
    import fcntl

    from weightwidget.errors import StoreLockTimeout

    fd = os.open(Path(store_path) / "LOCK", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process holds the writer lock
        out = run_python(f"""
            import weightwidget as ww
            t = ww.WeightTable.open({store_path!r})
            try:
                with t._store.lock(timeout=0.3):
                    pass
            except Exception as e:
                print(type(e).__name__, e)
        """)
    finally:
        os.close(fd)
    assert StoreLockTimeout.__name__ in out and "LOCK" in out


STEADY_WRITER = """
import sys, numpy as np, weightwidget as ww
t = ww.WeightTable.open(sys.argv[1])
pattern = np.arange(len(t)) % 7
for k in range(1, 81):
    t.set_weights(None, k + pattern, message=f"k={k}")
"""


def test_readers_never_see_a_half_written_revision(tmp_path):
    """While another process commits, latest() and open() always see whole revisions."""
    path = tmp_path / "s"
    n = 50_000
    reader = ww.WeightTable.from_arrays(labels=np.arange(n) % 5, store=path)
    pattern = np.arange(n) % 7
    script = tmp_path / "steady.py"
    script.write_text(STEADY_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], cwd=ROOT)
    seen = set()
    try:
        while proc.poll() is None or len(seen) < 2:
            for t in (reader.latest(), ww.WeightTable.open(path)):
                if t.revision:
                    k = t.weights[0]  # pattern[0] == 0; a torn read breaks the pattern
                    np.testing.assert_array_equal(t.weights, k + pattern)
                    assert t._store.header(t.revision)["message"] == f"k={int(k)}"
                    seen.add(t.revision)
            if proc.poll() is not None and reader.revision == 80:
                break
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert reader.latest().revision == 80
    assert len(seen) >= 3  # the reader really read while the writer was writing
