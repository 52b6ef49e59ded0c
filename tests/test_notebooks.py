"""Every notebook in notebooks/ runs headless from top to bottom (nbclient), offline,
and says what it claims: e.g. minority recall is higher after curating the weights."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _run(name: str, tmp_path: Path) -> str:
    src = ROOT / "notebooks" / name
    shutil.copy(src, tmp_path / name)
    nb = nbformat.read(tmp_path / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                text.append(out["data"]["text/plain"])
    return "\n".join(text)


def test_every_notebook_is_covered():
    assert {p.name for p in NOTEBOOKS} == {"quickstart.ipynb", "tensorflow.ipynb"}


def test_quickstart(tmp_path):
    out = _run("quickstart.ipynb", tmp_path)
    recalls = [float(x) for x in re.findall(r"minority recall \(7, 8, 9\): ([0-9.]+)", out)]
    assert len(recalls) == 2, out
    before, after = recalls
    assert after > before + 0.2, (before, after)
    share = int(re.search(r"(\d+)% of them were really flipped", out).group(1))
    assert share >= 70  # the loss filter finds mislabelled samples, not random ones
    assert "WeightWidget" in out  # the widget was displayed
    assert (tmp_path / ".weightwidget" / "digits" / "meta.json").exists()


@pytest.mark.tf
def test_tensorflow(tmp_path):
    out = _run("tensorflow.ipynb", tmp_path)
    before = float(re.search(r"minority recall before \(7, 8, 9\): ([0-9.]+)", out).group(1))
    after = [
        float(x) for x in re.findall(r"minority recall with [a-z._ ]+ \(7, 8, 9\): ([0-9.]+)", out)
    ]
    assert len(after) == 3, out
    assert all(a > before for a in after), (before, after)
    assert "(TensorSpec(shape=(None, 64)" in out  # (x, y, w) batches
