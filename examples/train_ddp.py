"""Train with DistributedDataParallel on CPU (gloo), with the weights a notebook curated.

The notebook and this script share nothing but the store folder: the script opens
it, builds a distributed weighted sampler from the newest revision, and trains a
small classifier on the table's image column with 2 processes.

    python examples/train_ddp.py --store notebooks/.weightwidget/digits --nproc 2

Each rank draws a disjoint, equal share of one global weighted draw per epoch;
rows the notebook excluded (weight 0) are never drawn.
"""

from __future__ import annotations

import argparse
import json
import os
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import weightwidget as ww


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _features(table: ww.WeightTable, column: str) -> torch.Tensor:
    values = np.asarray(table.column(column), dtype=np.float32)
    return torch.from_numpy(values.reshape(len(table), -1))


def worker(rank: int, args: argparse.Namespace, port: int) -> None:
    """Train on this rank's share of each epoch's weighted draw."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=args.nproc)
    torch.manual_seed(0)
    table = ww.WeightTable.open(args.store)
    x = _features(table, args.features)
    y = torch.from_numpy(table.label_codes.astype(np.int64))
    # the row id rides along with each sample, so we log the rows the model trained on
    # (iterating the sampler a second time to log them would draw the next epoch)
    rows = torch.arange(len(table))
    dataset = torch.utils.data.TensorDataset(x, y, rows)
    sampler = table.create_sampler(distributed=True, seed=args.seed)  # rank/world from dist
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, len(table.classes))
    ))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    epochs = []
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        trained = []
        for xb, yb, ib in loader:
            trained.append(ib)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        epochs.append(torch.cat(trained).numpy())
    drawn = np.concatenate(epochs)
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    summary = {"rank": rank, "revision": table.revision, "draws": len(drawn),
               "per_class": np.bincount(table.label_codes[drawn],
                                        minlength=len(table.classes)).tolist(),
               "zero_weight_draws": int((table.weights[drawn] == 0).sum()),
               "train_accuracy": round(accuracy, 4), "first": drawn[:5].tolist(),
               "epoch_heads": [e[:8].tolist() for e in epochs],
               "epoch_sums": [int(e.sum()) for e in epochs]}
    gathered: list[dict] = [{} for _ in range(args.nproc)]
    dist.all_gather_object(gathered, summary)  # rank 0 prints: lines never interleave
    if rank == 0:
        for item in gathered:
            print(json.dumps(item), flush=True)
    dist.destroy_process_group()


def main() -> None:
    """Parse the arguments and spawn one process per rank."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="the store the notebook wrote")
    parser.add_argument("--features", default="image", help="column to train on")
    parser.add_argument("--nproc", type=int, default=2, help="processes (CPU, gloo)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 cores, 2 processes
    mp.spawn(worker, args=(args, _free_port()), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
