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
def test_export_the_whole_weight_vector(curated, store_path, tmp_path, fmt, capsys):
    # npy is the weight vector; csv/parquet give every row with --include-excluded
    out = tmp_path / f"w.{fmt}"
    extra = [] if fmt == "npy" else ["--include-excluded"]
    assert main(["export", store_path, "--format", fmt, "-o", str(out), *extra]) == 0
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


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_leaves_out_rows_that_never_train(curated, store_path, tmp_path, fmt, capsys):
    out = tmp_path / f"w.{fmt}"
    assert main(["export", store_path, "-o", str(out)]) == 0  # the format from the suffix
    got, meta = ww.read_export(out)
    np.testing.assert_allclose(got["weight"], curated.weights[curated.weights > 0])
    n4 = int((curated.labels == 4).sum())
    assert f"({n4} rows left out)" in capsys.readouterr().out
    assert meta["table"] == "t" and meta["revision"] == 2


def test_counts_are_checked_or_defined(curated, store_path, capsys):
    # diff --limit 0 prints only the count
    assert main(["diff", store_path, "0", "1", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    n4 = int((curated.labels == 4).sum())
    assert out.strip() == f"{n4} rows differ between revision 0 and 1"
    for argv, message in [
        (["diff", store_path, "0", "--limit", "-3"], "--limit must be >= 0; got -3"),
        (["log", store_path, "--limit", "0"], "--limit must be positive; got 0"),
        (["log", store_path, "--limit", "-1"], "--limit must be positive; got -1"),
        (["show", store_path, "--num-samples", "0"], "--num-samples must be positive; got 0"),
        (["show", store_path, "-r", "-1"], "--revision must be >= 0; got -1"),
    ]:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_show_num_samples(curated, store_path, capsys):
    assert main(["show", store_path, "--num-samples", "1000"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert sum(float(p[6]) for p in lines) == pytest.approx(1000, abs=0.5)


def test_revert_to_the_current_state_commits_nothing(curated, store_path, capsys):
    assert main(["revert", store_path, "2"]) == 0
    out = capsys.readouterr()
    assert "nothing to revert: revision 2 already has the weights and labels of revision 2" in (
        out.out
    )
    assert "Warning" not in out.err
    assert ww.WeightTable.open(store_path).revision == 2


def test_diff_and_show_with_label_edits(curated, store_path, capsys):
    curated.set_labels([0, 1], None)
    curated.set_labels([2], 4)
    assert main(["diff", store_path, "2"]) == 0
    out = capsys.readouterr().out
    assert "3 rows differ between revision 2 and 4 (0 weights, 3 labels)" in out
    assert "label@2" in out and "label@4" in out
    assert main(["show", store_path]) == 0
    assert "2 unlabelled (never trained on)" in capsys.readouterr().out
    assert main(["show", store_path, "-r", "2"]) == 0
    assert "unlabelled" not in capsys.readouterr().out  # that revision's labels


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


def test_demo_opens_a_packaged_notebook_outside_a_clone(tmp_path, monkeypatch, capsys):
    import weightwidget.cli as cli

    shipped = tmp_path / "site" / "weightwidget"
    (shipped / "notebooks").mkdir(parents=True)
    for name in ("quickstart", "tensorflow"):
        (shipped / "notebooks" / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(cli, "__file__", str(shipped / "cli.py"))
    work = tmp_path / "work"
    assert main(["demo", "tensorflow", "--dir", str(work), "--dry-run"]) == 0
    assert (work / "tensorflow.ipynb").read_text() == "{}"
    assert "tensorflow.ipynb" in capsys.readouterr().out
    assert main(["demo", "gradual", "--dir", str(work), "--dry-run"]) == 1
    assert "packaged: quickstart, tensorflow" in capsys.readouterr().err
