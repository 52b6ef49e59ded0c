"""The command line: every subcommand on a real store, and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import weightwidget as ww
from weightwidget.cli import main

from .conftest import ROOT


@pytest.fixture
def curated(table, store_path):
    table.set_weights("label == 4", 0, message="drop fours")
    table.balance("balanced")
    return table


def test_help_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "weightwidget", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    for command in ("log", "show", "diff", "revert", "export", "demo"):
        assert command in out


def test_log(curated, store_path, capsys):
    assert main(["log", store_path]) == 0
    out = capsys.readouterr().out
    assert "drop fours" in out and "balance balanced" in out
    assert "now at revision 2" in out
    assert main(["log", store_path, "--limit", "1"]) == 0
    assert "drop fours" not in capsys.readouterr().out


def test_show_now_and_at_a_revision(curated, store_path, capsys):
    assert main(["show", store_path]) == 0
    out = capsys.readouterr().out
    assert "at revision 2" in out and "effective_share" in out
    lines = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    shares = {int(p[0]): float(p[5]) for p in lines}
    assert shares[4] == 0.0
    assert shares[0] == pytest.approx(0.25, abs=1e-3)  # 4 included classes, equal weight
    assert main(["show", store_path, "--revision", "0"]) == 0
    out0 = capsys.readouterr().out
    assert "at revision 0" in out0
    assert ww.WeightTable.open(store_path).revision == 2  # show changes nothing


def test_diff(curated, store_path, capsys):
    assert main(["diff", store_path, "0", "1", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    n4 = int((curated.labels == 4).sum())
    assert f"{n4} rows differ between revision 0 and 1" in out
    assert f"and {n4 - 3} more" in out


def test_revert(curated, store_path, capsys):
    assert main(["revert", store_path, "0", "-m", "start over"]) == 0
    assert "revision 3: start over" in capsys.readouterr().out
    t = ww.WeightTable.open(store_path)
    assert t.revision == 3 and (t.weights == 1).all()


@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
def test_export(curated, store_path, tmp_path, fmt, capsys):
    out = tmp_path / f"w.{fmt}"
    assert main(["export", store_path, "--format", fmt, "-o", str(out)]) == 0
    if fmt == "npy":
        got = np.load(out)
    elif fmt == "csv":
        got = pd.read_csv(out)["weight"].to_numpy()
    else:
        got = pd.read_parquet(out)["weight"].to_numpy()
    np.testing.assert_allclose(got, curated.weights)
    assert main(["export", store_path, "--format", fmt, "-o", str(out)]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["export", store_path, "-f", fmt, "-o", str(out), "--force", "-r", "0"]) == 0


BAD = [
    (["show", "/no/such/store"], "meta.json is missing"),
    (["diff", "{store}", "0", "99"], "revision 99 does not exist"),
    (["revert", "{store}", "-5"], "does not exist"),
    (["show", "{store}", "--num-samples", "x"], "invalid int value"),
    (["export", "{store}", "--format", "xlsx"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_exits_non_zero_with_one_line(curated, store_path, argv, message):
    argv = [a.replace("{store}", store_path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "weightwidget", *argv], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("weightwidget")  # one line says what


def test_demo_dry_run_uses_the_quickstart(tmp_path, capsys):
    assert main(["demo", "--dir", str(ROOT / "notebooks"), "--dry-run", "--no-browser"]) == 0
    out = capsys.readouterr().out
    assert "quickstart.ipynb" in out and "jupyterlab" in out


def test_demo_outside_the_repo_needs_the_packaged_notebook(tmp_path, capsys):
    import weightwidget.cli as cli

    code = main(["demo", "--dir", str(tmp_path / "empty"), "--dry-run"])
    packaged = (ROOT / "weightwidget" / "notebooks" / "quickstart.ipynb").exists()
    if packaged:  # installed from a wheel
        assert code == 0
    else:  # editable install from the repository: a clear message
        assert code == 1
        assert "no quickstart.ipynb" in capsys.readouterr().err
    assert cli.EXPORT_FORMATS == ("npy", "csv", "parquet")
