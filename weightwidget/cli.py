"""The ``weightwidget`` command line: inspect and change a store, export weights, run the demo.

Examples
--------
::

    weightwidget log .weightwidget/digits
    weightwidget show .weightwidget/digits --revision 3
    weightwidget diff .weightwidget/digits 2 5
    weightwidget revert .weightwidget/digits 2
    weightwidget export .weightwidget/digits --format parquet -o weights.parquet
    weightwidget compact .weightwidget/digits
    weightwidget demo
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main"]

EXPORT_FORMATS = ("npy", "csv", "parquet")


def _open(store: str):
    from .table import WeightTable

    return WeightTable.open(store, author=os.environ.get("WEIGHTWIDGET_AUTHOR", "cli"))


def _print_frame(df: pd.DataFrame) -> None:
    with pd.option_context(
        "display.max_rows", 200, "display.width", 120, "display.max_colwidth", 80
    ):
        print(df.to_string())


def cmd_log(args: argparse.Namespace) -> int:
    table = _open(args.store)
    hist = table.history()
    if args.limit:
        hist = hist.tail(args.limit)
    hist = hist.assign(created=hist["created"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    _print_frame(hist.set_index("revision"))
    print(f"\n{table.name}: {len(table):,} rows, now at revision {table.revision}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    table = _open(args.store)
    if args.revision is not None and args.revision != table.revision:
        weights = table.weights_at(args.revision)
        rev = args.revision
    else:
        weights, rev = table.weights, table.revision
    from .view import class_aggregates

    counts, included, sums = class_aggregates(table, weights=weights)
    total = sums.sum()
    if total <= 0:
        raise ValueError(f"all weights are 0 at revision {rev}: there is no class balance")
    num = args.num_samples or int(included.sum())
    df = pd.DataFrame(
        {
            "count": counts,
            "included": included,
            "weight_sum": sums.round(4),
            "share": (counts / counts.sum()).round(4),
            "effective_share": (sums / total).round(4),
            "expected_draws": (sums / total * num).round(1),
        },
        index=pd.Index(table.classes, name=table.label),
    )
    print(
        f"{table.name} at revision {rev}: {len(table):,} rows, {int(included.sum()):,} "
        f"included, effective sample size {total**2 / float((weights**2).sum()):,.1f}"
    )
    _print_frame(df)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    table = _open(args.store)
    d = table.diff(args.a, args.b)
    b = table.revision if args.b is None else args.b
    print(f"{len(d):,} rows differ between revision {args.a} and {b}")
    if len(d):
        _print_frame(
            d.head(args.limit).rename(
                columns={"weight_a": f"weight@{args.a}", "weight_b": f"weight@{b}"}
            )
        )
        if len(d) > args.limit:
            print(f"... and {len(d) - args.limit:,} more (use --limit)")
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    table = _open(args.store)
    rev = table.revert(args.revision, message=args.message)
    print(f"revision {rev}: {table.history()['message'].iloc[-1]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    table = _open(args.store)
    weights = table.weights if args.revision is None else table.weights_at(args.revision)
    out = Path(args.output or f"{table.name}-weights.{args.format}")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    if args.format == "npy":
        np.save(out, weights, allow_pickle=False)
    else:
        df = pd.DataFrame(
            {"row": np.arange(len(weights)), "label": table.labels, "weight": weights}
        )
        if args.format == "csv":
            df.to_csv(out, index=False)
        else:
            df.to_parquet(out, index=False)
    print(f"wrote {len(weights):,} weights to {out}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    table = _open(args.store)
    report = table.compact(progress=not args.quiet)
    print(
        f"{table.name}: snapshots {report['snapshots_before']} -> {report['snapshots_after']} "
        f"({report['bytes_before'] / 1e6:,.1f} MB -> {report['bytes_after'] / 1e6:,.1f} MB); "
        f"every revision unchanged (newest: {table.revision})"
    )
    return 0


def _demo_notebook(folder: Path) -> Path:
    """The quickstart notebook in ``folder``: the repository's, or the packaged copy."""
    target = folder / "quickstart.ipynb"
    if target.exists():
        return target
    packaged = Path(__file__).parent / "notebooks" / "quickstart.ipynb"
    if not packaged.exists():
        raise FileNotFoundError(
            f"no quickstart.ipynb in {folder} and none packaged with weightwidget; run from "
            "the repository (scripts/demo) or pass --dir to a folder that has it"
        )
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(packaged, target)
    return target


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    notebook = _demo_notebook(folder)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        notebook.name,
        f"--ServerApp.root_dir={folder}",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")
    print(f"opening {notebook} in JupyterLab (Ctrl-C stops it)", flush=True)
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    return subprocess.call(cmd, cwd=folder)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="weightwidget",
        description="Inspect and change a weightwidget store; export weights; run the demo.",
        epilog="A STORE is a folder (e.g. .weightwidget/digits) or an fsspec URL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("log", help="list the revisions of a store")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--limit", type=int, default=0, help="only the last N revisions")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("show", help="class balance table, now or at a revision")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--revision", "-r", type=int, default=None, help="revision to show")
    p.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="draws per epoch for expected_draws (default: included rows)",
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="rows whose weight differs between two revisions")
    p.add_argument("store", metavar="STORE")
    p.add_argument("a", type=int, metavar="A", help="first revision")
    p.add_argument(
        "b",
        type=int,
        nargs="?",
        default=None,
        metavar="B",
        help="second revision (default: the newest)",
    )
    p.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("revert", help="restore a revision's weights as a new revision")
    p.add_argument("store", metavar="STORE")
    p.add_argument("revision", type=int, metavar="REV")
    p.add_argument("--message", "-m", default=None, help="revision message")
    p.set_defaults(func=cmd_revert)

    p = sub.add_parser("export", help="write the weights to a file")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--format", "-f", choices=EXPORT_FORMATS, default="npy")
    p.add_argument("--output", "-o", default=None, help="file to write")
    p.add_argument("--revision", "-r", type=int, default=None, help="default: newest")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compact", help="rewrite old snapshots compactly (no revision changes)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("demo", help="open the quickstart notebook in JupyterLab")
    p.add_argument(
        "--dir",
        default="notebooks" if Path("notebooks").is_dir() else ".",
        help="folder for the notebook and its store (default: ./notebooks or .)",
    )
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--no-browser", action="store_true", help="print the URL only")
    p.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"weightwidget {args.command}: error: {message}", file=sys.stderr)
        return 1
