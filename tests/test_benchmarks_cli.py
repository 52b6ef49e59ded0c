"""``python -m benchmarks`` prints its options, lists and selects groups (issue 13 point 7)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from benchmarks.__main__ import SUITES, main, select

from .conftest import ROOT


def test_help_prints_the_options_and_groups_at_once():
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    took = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "GROUP" in proc.stdout
    for name in SUITES:
        assert name in proc.stdout
    assert "weightwidget benchmarks on" not in proc.stdout  # nothing was measured
    assert took < 30  # the whole suite takes over a minute


def test_groups_are_selected_by_name_in_suite_order():
    assert select([]) == list(SUITES)
    assert select(["widget", "core"]) == ["core", "widget"]
    with pytest.raises(ValueError, match="unknown benchmark group 'cor'; the groups are core"):
        select(["cor"])


def test_unknown_group_exits_2_and_list_runs_nothing(capsys):
    with pytest.raises(SystemExit) as info:
        main(["nope"])
    assert info.value.code == 2
    assert "unknown benchmark group 'nope'" in capsys.readouterr().err
    assert main(["--list", "core", "widget"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["core", "widget"]


def test_one_group_runs_alone(monkeypatch, capsys):
    ran = []

    class Fake:
        @staticmethod
        def run(quick):
            ran.append(quick)
            return []

    import importlib

    real = importlib.import_module

    def fake_import(name, *args):
        return Fake if name.startswith("benchmarks.bench_") else real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    assert main(["--quick", "core"]) == 0
    out = capsys.readouterr().out
    assert ran == [True]
    assert "## core (table, store, filters)" in out and "## widget" not in out
