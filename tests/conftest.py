"""Shared fixtures: small tables on a temporary store, and a helper to run code in
a fresh Python process (as a training script would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# property-based tests: a CI-sized default; HYPOTHESIS_PROFILE=thorough runs thousands
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

import weightwidget as ww  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1000
    labels = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    return pd.DataFrame(
        {
            "label": labels,
            "loss": rng.gamma(2.0, 1.0, size=n),
            "caption": [f"sample {i} {'cat' if i % 3 == 0 else 'dog'}" for i in range(n)],
            "flagged": rng.random(n) < 0.1,
        }
    )


@pytest.fixture
def table(frame: pd.DataFrame, store_path: str) -> ww.WeightTable:
    return ww.WeightTable.from_pandas(frame, label="label", name="t", store=store_path)


def run_python(code: str, *, timeout: float = 120, env: dict | None = None) -> str:
    """Run ``code`` in a new interpreter and return its stdout (fails on error)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def run_json(code: str, **kw) -> object:
    """Run ``code`` (which prints one JSON line last) and parse it."""
    return json.loads(run_python(code, **kw).strip().splitlines()[-1])
