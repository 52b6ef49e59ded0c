"""The README's code blocks marked ``<!-- runnable ... -->`` run as written (issue 13 point 7).

They run in order, in one fresh process (later blocks use names earlier ones made), in an
empty folder, so the default store ``.weightwidget/<name>`` starts empty.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from .conftest import ROOT

MARK = re.compile(r"^<!-- runnable\b[^\n]*-->[ \t]*\n```python\n(.*?)^```", re.M | re.S)


def runnable_blocks() -> list[str]:
    return MARK.findall((ROOT / "README.md").read_text())


def test_the_readme_marks_its_examples_runnable():
    blocks = runnable_blocks()
    assert len(blocks) >= 4
    first = blocks[0]
    # the ten-line example makes every column it uses (issue 13: it used a `loss` it never made)
    assert "collect_metrics" in first and "r1_loss" in first
    text = "\n".join(blocks)
    for name in ("from_torch_dataset", "latest()", "focus_on_hard", "exclude_zero_weights"):
        assert name in text, name


@pytest.mark.slow
def test_the_readme_runnable_blocks_run(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    script = "\n\n".join(runnable_blocks())
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "WEIGHTWIDGET_AUTHOR": "readme"},
        timeout=600,
    )
    assert proc.returncode == 0, f"README example failed:\n{proc.stderr[-3000:]}"
    assert (tmp_path / ".weightwidget" / "digits" / "meta.json").exists()
    assert (tmp_path / "digits-curated.parquet").exists()
