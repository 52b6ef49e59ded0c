"""Compaction and format-1 stores (issue 10): every revision keeps its weights.

"Its weights" are checked against a replay of the revision files from revision 0,
which uses no snapshot at all.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import weightwidget as ww
from weightwidget import store as store_mod
from weightwidget.cli import main as cli

from .conftest import ROOT

LEGACY = Path(__file__).parent / "data" / "legacy_stores" / "long"


def replay(path) -> dict[int, np.ndarray]:
    """Every revision's weights from the revision files alone, oldest first."""
    st = store_mod.RevisionStore(str(path))
    st.read_meta()
    numbers = st.revision_numbers()
    first = st.read_snapshot(0).weights  # revision 0 changes nothing; its weights are here
    states: dict[int, np.ndarray] = {0: first}
    for rev in numbers[1:]:
        revision = st.read_revision(rev)
        w = states[revision.parent].copy()
        change = revision.change("weight")
        if change is not None:
            if change.ids is None:
                w[:] = change.values
            else:
                w[change.ids] = change.values
        states[rev] = w
    return states


def every_revision(path) -> dict[int, np.ndarray]:
    """Every revision's weights as a table opens them (snapshots and all)."""
    newest = ww.WeightTable.open(path)
    revs = range(newest.revision + 1)
    return {rev: ww.WeightTable.open(path, revision=rev).weights for rev in revs}


def _assert_same(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for rev in a:
        np.testing.assert_array_equal(a[rev], b[rev], err_msg=f"revision {rev}")


@pytest.fixture
def legacy(tmp_path) -> Path:
    path = tmp_path / "long"
    shutil.copytree(LEGACY, path)
    return path


def test_a_format_1_store_opens_at_every_revision(legacy):
    expected = replay(legacy)
    assert len(expected) == 103  # 100 edits, one scale, one undo, the columns run
    _assert_same(every_revision(legacy), expected)
    t = ww.WeightTable.open(legacy)
    assert "loss" in t.columns and t.runs()["run"].tolist() == ["r1"]
    assert t.history()["message"].iloc[1] == "edit 0"


def test_compaction_changes_no_revision_and_shrinks_old_snapshots(legacy):
    before = replay(legacy)
    snaps = legacy / "snapshots"
    raw_bytes = sum(p.stat().st_size for p in snaps.iterdir())
    t = ww.WeightTable.open(legacy)
    report = t.compact(progress=False)
    assert report["bytes_after"] < raw_bytes / 4  # full-size raw snapshots became compressed
    assert report["bytes_before"] == raw_bytes
    _assert_same(replay(legacy), before)
    _assert_same(every_revision(legacy), before)
    # the first write upgraded the store; format-1 columns stay
    assert ww.WeightTable.open(legacy).column("loss").shape == (3000,)
    t.set_weights([0], 9.0)
    assert ww.WeightTable.open(legacy).weights[0] == 9.0


def test_the_compact_command(legacy, capsys):
    before = replay(legacy)
    assert cli(["compact", str(legacy), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "snapshots 4 ->" in out and "every revision unchanged" in out
    _assert_same(every_revision(legacy), before)


def test_compaction_thins_snapshots_of_a_long_history(tmp_path):
    path = tmp_path / "s"
    n = 2000  # small rows: the policy writes a snapshot every few revisions
    t = ww.WeightTable.from_arrays(labels=np.arange(n) % 4, store=path)
    rng = np.random.default_rng(3)
    for i in range(700):
        t.set_weights(rng.choice(n, 5, replace=False), float(i % 7))
    # the policy wrote a snapshot every few commits; old ones were thinned as it went
    assert len(list((path / "snapshots").iterdir())) <= 16 + 4 * np.log2(700) + 1
    before = replay(path)
    t.compact(progress=False)
    _assert_same(replay(path), before)
    st = store_mod.RevisionStore(str(path))
    st.read_meta()
    kept = np.array(sorted(st.snapshot_numbers()))
    assert kept[0] == 0 and kept[-1] == 700  # the newest is kept
    assert len(kept) <= 4 * np.log2(700) + 2  # log-spaced: grows with the log of the history
    # and yet every past revision is a short replay from a snapshot before it
    for rev in range(701):
        nearest = kept[kept <= rev].max()
        assert rev - nearest <= (700 - rev) / 4 + 32, rev
    for rev in (0, 1, 350, 699, 700):
        np.testing.assert_array_equal(ww.WeightTable.open(path, revision=rev).weights, before[rev])


COMPACTOR = """
import sys, weightwidget as ww
t = ww.WeightTable.open(sys.argv[1])
print("ready", flush=True)
while True:
    t._store._snapshots = None
    for f in list((t._store.files.root / "snapshots").iterdir()):
        if f.name != "r000000000000.snap":
            f.unlink()  # undo the previous round, so every round rewrites everything
    t.compact(progress=False)
"""


@pytest.mark.slow
def test_a_kill_during_compaction_leaves_every_revision_readable(legacy, tmp_path):
    before = replay(legacy)
    script = tmp_path / "compact.py"
    script.write_text(COMPACTOR)
    rng = random.Random(7)
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(legacy)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == b"ready", proc.stderr.read() if proc.stderr else b""
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_same(every_revision(legacy), before)


WRITER = """
import sys, numpy as np, weightwidget as ww
t = ww.WeightTable.open(sys.argv[1], session="writer")
for i in range(60):
    t.set_weights([i], 7.0, message=f"w{i}")
"""


def test_compaction_beside_a_writer_loses_nothing(legacy, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(legacy)], cwd=ROOT)
    t = ww.WeightTable.open(legacy)
    while proc.poll() is None:
        t.compact(progress=False)
    assert proc.returncode == 0
    t.compact(progress=False)
    final = ww.WeightTable.open(legacy)
    assert final.revision == 102 + 60
    assert (final.weights[:60] == 7.0).all()
    _assert_same(every_revision(legacy), replay(legacy))


def test_reading_the_history_of_a_fresh_handle_writes_nothing(tmp_path):
    """History chunks that are current are read, not written again by every reader."""
    path = tmp_path / "s"
    t = ww.WeightTable.from_arrays(labels=np.arange(50) % 3, store=str(path))
    for i in range(300):  # a whole block of 256 revisions (packed) and a partial one
        t.set_weights([i % 50], 1.0 + i)
    t.history()  # the writer's own reads may complete the chunks

    def log_files():
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (path / "log").iterdir()}

    before = log_files()
    assert sorted(before) == ["b000000000.log", "b000000000.pack", "b000000001.log"]
    for _ in range(2):
        assert len(ww.WeightTable.open(str(path)).history()) == 301
    # a reader that replayed the revisions (their headers at hand, chunks unread)
    st = store_mod.RevisionStore(str(path))
    st.read_meta()
    for rev in range(1, 301):
        st.read_revision(rev)
    assert len(st.headers(300)) == 301
    assert log_files() == before


@pytest.mark.parametrize("layout", ["pack file", "pack inside the chunk (before 0.3)"])
def test_a_long_replay_reads_the_blocks_pack(tmp_path, monkeypatch, layout):
    """Replaying past a whole block reads its pack, in either layout, to the same weights."""
    from weightwidget import _files
    from weightwidget._records import frame

    path = tmp_path / "s"
    t = ww.WeightTable.from_arrays(labels=np.arange(50) % 3, store=str(path))
    for i in range(300):
        t.set_weights([i % 50], 1.0 + i)
    t.history()  # writes block 0's chunk and pack
    expected = replay(path)[280]
    log = path / "log"
    if layout != "pack file":  # rewrite block 0 as earlier versions did: one file
        st = store_mod.RevisionStore(str(path))
        st.read_meta()
        pack, blob, _ = st._read_pack(0)
        chunk, payload, _ = st._read_chunk(0)
        heads = bytes(payload[: chunk["headers_size"]])
        chunk["pack"] = {"size": len(blob), "raw_size": pack["raw_size"]}
        chunk["pack"]["lengths"] = pack["lengths"]
        old = frame(chunk, heads, bytes(blob))
        (log / "b000000000.log").write_bytes(b"".join(bytes(part) for part in old))
        (log / "b000000000.pack").unlink()
    for snap in (path / "snapshots").iterdir():
        if snap.name != "r000000000000.snap":
            snap.unlink()
    reads: list[str] = []
    original = _files._LocalFiles.read

    def spy(self, rel, **kw):
        reads.append(rel)
        return original(self, rel, **kw)

    monkeypatch.setattr(_files._LocalFiles, "read", spy)
    past = ww.WeightTable.open(str(path), revision=280)
    np.testing.assert_array_equal(past.weights, expected)
    wanted = "log/b000000000.pack" if layout == "pack file" else "log/b000000000.log"
    assert wanted in reads
