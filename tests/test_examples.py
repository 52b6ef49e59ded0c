"""examples/train_ddp.py: a script in other processes trains (DDP, gloo, 2 ranks) with
exactly the weights curated here."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import weightwidget as ww

from .conftest import ROOT


@pytest.mark.slow
def test_ddp_script_trains_on_the_curated_weights(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    labels = rng.choice(4, size=n, p=[0.55, 0.25, 0.15, 0.05])
    images = rng.random((n, 4, 4)).astype(np.float32) + labels[:, None, None]
    t = ww.WeightTable.from_arrays(labels=labels, image=images, store=tmp_path / "s")
    t.set_weights("label == 1 and row < 100", 0, message="exclude")
    t.balance("balanced")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "train_ddp.py"),
            "--store",
            str(tmp_path / "s"),
            "--epochs",
            "4",
            "--nproc",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = sorted(
        (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")),
        key=lambda r: r["rank"],
    )
    assert [r["rank"] for r in ranks] == [0, 1]
    assert {r["revision"] for r in ranks} == {t.revision}
    assert ranks[0]["draws"] == ranks[1]["draws"] > 0  # equal shares
    assert all(r["zero_weight_draws"] == 0 for r in ranks)  # excluded rows never drawn
    assert ranks[0]["first"] != ranks[1]["first"]  # disjoint shares of one draw
    # what each rank trained on is its share of epochs 0..3 (and not, say, of 1..4,
    # as when the script iterated the sampler once to log it and once to train)
    for r in ranks:
        s = t.create_sampler(distributed=True, num_replicas=2, rank=r["rank"], seed=0)
        expected = [s.indices(e) for e in range(4)]
        assert r["epoch_heads"] == [e[:8].tolist() for e in expected]
        assert r["epoch_sums"] == [int(e.sum()) for e in expected]
    counts = np.add(ranks[0]["per_class"], ranks[1]["per_class"])
    expected = t.class_balance()["effective_share"].to_numpy() * counts.sum()
    p = stats.chisquare(counts, expected).pvalue
    assert p > 0.001, (counts, expected)  # the union follows the weights (balanced: 1/4 each)
