"""DistributedDataParallel sampling with two real processes on the gloo backend.

Each rank opens the same store (as a DDP training script would), builds a
distributed sampler from ``torch.distributed`` and writes the indices it yields;
the parent checks that shares are disjoint and equal, that they interleave into
the one global draw, and that their union follows the weights (chi-square,
fixed seed, p > 0.001).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy import stats

import weightwidget as ww
from weightwidget import _sampling
from weightwidget.samplers import create_sampler

WORLD = 2
N_ROWS = 40
NUM_SAMPLES = 20_001  # odd: the last share is padded with one extra draw


def _weights() -> np.ndarray:
    w = np.random.default_rng(0).gamma(0.5, 1.0, size=N_ROWS)
    w[::7] = 0.0
    return w


def _worker(rank: int, store: str, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        table = ww.WeightTable.open(store)
        out: dict[str, list[int] | int] = {}
        s = create_sampler(table, NUM_SAMPLES, seed=11, distributed=True)
        out["num_replicas"], out["rank"], out["len"] = s.num_replicas, s.rank, len(s)
        for epoch in range(2):
            s.set_epoch(epoch)
            out[f"with_{epoch}"] = list(s)
        s = create_sampler(table, 30, replacement=False, seed=3, distributed=True)
        out["without"] = list(s)
        # evaluation order: every included row once, split between the ranks
        out["in_order"] = list(
            create_sampler(table, weighted=False, shuffle=False, distributed=True)
        )
        # live: rank 0 excludes rows 0..19 between epochs; both ranks see it next epoch
        s = create_sampler(table, 1000, seed=5, distributed=True, live=True)
        out["live_0"] = list(s)
        dist.barrier()
        if rank == 0:
            table.set_weights(slice(0, 20), 0, message="rank 0 excludes half")
        dist.barrier()
        out["live_1"] = list(s)
        out["live_rev"] = s.revision
        # no barrier: rank 1 may refresh before rank 0 commits; the ranks must still
        # agree on one revision (rank 1 waits for it) before drawing
        if rank == 0:
            table.set_weights(slice(20, 30), 0, message="rank 0 excludes more")
        out["live_2"] = list(s)
        out["live_rev_2"] = s.revision
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_share_one_weighted_draw(tmp_path):
    w = _weights()
    store = str(tmp_path / "store")
    ww.WeightTable.from_arrays(labels=np.arange(N_ROWS) % 4, name="ddp", store=store, weights=w)
    mp.spawn(
        _worker,
        args=(store, str(tmp_path / "init"), str(tmp_path)),
        nprocs=WORLD,
        join=True,
    )
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    per_rank = -(-NUM_SAMPLES // WORLD)
    assert [(r["num_replicas"], r["rank"], r["len"]) for r in res] == [
        (2, 0, per_rank),
        (2, 1, per_rank),
    ]
    prep = _sampling.prepare(w)
    for epoch in range(2):
        shares = [np.array(r[f"with_{epoch}"]) for r in res]
        assert [s.size for s in shares] == [per_rank, per_rank]
        # the shares are disjoint slices of one global draw, interleaved by rank
        glob = _sampling.draw_with_replacement(
            prep, per_rank * WORLD, _sampling.epoch_rng(11, epoch)
        )
        np.testing.assert_array_equal(shares[0], glob[0::2])
        np.testing.assert_array_equal(shares[1], glob[1::2])
        union = np.concatenate(shares)
        counts = np.bincount(union, minlength=N_ROWS)
        assert counts[w == 0].sum() == 0
        nz = w > 0
        expected = w[nz] / w[nz].sum() * union.size
        assert stats.chisquare(counts[nz], expected).pvalue > 0.001
    assert res[0]["with_0"] != res[0]["with_1"], "epochs must differ"
    a, b = (set(r["without"]) for r in res)
    included = np.flatnonzero(w > 0)
    padded = np.resize(included, -(-included.size // WORLD) * WORLD)
    assert [r["in_order"] for r in res] == [padded[r::WORLD].tolist() for r in range(WORLD)]
    assert len(a) == len(b) == 15 and not a & b and (w[list(a | b)] > 0).all()
    live0 = np.concatenate([r["live_0"] for r in res])
    live1 = np.concatenate([r["live_1"] for r in res])
    assert (live0 < 20).any() and not (live1 < 20).any()
    assert res[0]["live_rev"] == res[1]["live_rev"] == 1
    live2 = np.concatenate([r["live_2"] for r in res])
    assert res[0]["live_rev_2"] == res[1]["live_rev_2"] == 2
    assert not (live2 < 30).any()
