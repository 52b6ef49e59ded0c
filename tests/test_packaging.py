"""The wheel ships the demo notebooks, so ``weightwidget demo`` works outside a clone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

DEMOS = ("quickstart", "tensorflow", "gradual_labelling")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (dev extra)")
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "WEIGHTWIDGET_SKIP_JS": "1"}  # the bundle is not what is tested
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "-w",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (found,) = out.glob("weightwidget-*.whl")
    return found


def test_the_wheel_holds_the_demo_notebooks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for demo in DEMOS:
        assert f"weightwidget/notebooks/{demo}.ipynb" in names
        packed = zipfile.ZipFile(wheel).read(f"weightwidget/notebooks/{demo}.ipynb")
        assert packed == (ROOT / "notebooks" / f"{demo}.ipynb").read_bytes()


def test_demo_from_the_installed_wheel_outside_a_clone(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
            "-q",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "somewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}  # the wheel's copy, not the repository's
    for demo in DEMOS:
        proc = subprocess.run(
            [sys.executable, "-m", "weightwidget", "demo", demo, "--dry-run"],
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert (work / f"{demo}.ipynb").exists()
        assert f"{demo}.ipynb" in proc.stdout and "jupyterlab" in proc.stdout
