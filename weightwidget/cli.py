"""The ``weightwidget`` command line: inspect and change a store, export weights, run the demo.

Examples
--------
::

    weightwidget log .weightwidget/digits
    weightwidget show .weightwidget/digits --revision 3
    weightwidget diff .weightwidget/digits 2 5
    weightwidget revert .weightwidget/digits 2
    weightwidget export .weightwidget/digits -o curated.parquet --where "label != 3"
    weightwidget export .weightwidget/digits --format npy -o weights.npy
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


def _open(store: str, revision: int | None = None):
    from .table import WeightTable

    return WeightTable.open(
        store, revision=revision, author=os.environ.get("WEIGHTWIDGET_AUTHOR", "cli")
    )


def _count(minimum: int, what: str):
    """An argparse type: an int >= ``minimum``, refused with a message naming ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{what} must be {'positive' if minimum == 1 else f'>= {minimum}'}; got {value}"
            )
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def _print_frame(df: pd.DataFrame) -> None:
    with pd.option_context(
        "display.max_rows", 200, "display.width", 120, "display.max_colwidth", 80
    ):
        print(df.to_string())


def cmd_log(args: argparse.Namespace) -> int:
    table = _open(args.store)
    hist = table.history(limit=args.limit)
    hist = hist.assign(created=hist["created"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    _print_frame(hist.set_index("revision"))
    print(f"\n{table.name}: {len(table):,} rows, now at revision {table.revision}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    table = _open(args.store, args.revision)  # a past revision: its weights and labels
    balance = table.class_balance(num_samples=args.num_samples)
    weights = table.weights[table.label_codes >= 0]
    total = float(weights.sum())
    unlabelled = balance.attrs["n_unlabelled"]
    print(
        f"{table.name} at revision {table.revision}: {len(table):,} rows, "
        f"{int(balance['included'].sum()):,} included"
        + (f", {unlabelled:,} unlabelled (never trained on)" if unlabelled else "")
        + f", effective sample size {total**2 / float((weights**2).sum()):,.1f}"
    )
    rounded = balance.round(
        {"weight_sum": 4, "share": 4, "effective_share": 4, "expected_draws": 1}
    )
    _print_frame(rounded)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    table = _open(args.store)
    d = table.diff(args.a, args.b)
    a, b = d.attrs["a"], d.attrs["b"]
    labels = d.attrs["labels_changed"]
    print(
        f"{len(d):,} rows differ between revision {a} and {b}"
        + (f" ({d.attrs['weights_changed']:,} weights, {labels:,} labels)" if labels else "")
    )
    if len(d) and args.limit:
        shown = d.drop(columns=["label"]) if labels else d.drop(columns=["label_a", "label_b"])
        _print_frame(
            shown.head(args.limit).rename(
                columns={
                    "weight_a": f"weight@{a}",
                    "weight_b": f"weight@{b}",
                    "label_a": f"label@{a}",
                    "label_b": f"label@{b}",
                }
            )
        )
        if len(d) > args.limit:
            print(f"... and {len(d) - args.limit:,} more (use --limit)")
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    from .errors import NothingChangedWarning

    table = _open(args.store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NothingChangedWarning)
        rev = table.revert(args.revision, message=args.message)
    if any(issubclass(w.category, NothingChangedWarning) for w in caught):
        print(
            f"nothing to revert: revision {rev} already has the weights and labels of "
            f"revision {args.revision}; no revision was committed"
        )
        return 0
    print(f"revision {rev}: {table.history(limit=1)['message'].iloc[-1]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    table = _open(args.store, args.revision)
    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
        fmt = suffix if suffix in EXPORT_FORMATS else "parquet"
    if args.output:
        out = Path(args.output)
    else:
        out = Path(f"{table.name}-{'weights' if fmt == 'npy' else 'curated'}.{fmt}")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} exists; pass --force to overwrite it")
    if fmt == "npy":
        if args.where is not None or args.columns is not None or args.include_excluded:
            raise ValueError(
                "--format npy writes the whole weight vector (one weight per row, in dataset "
                "order); --where, --columns and --include-excluded apply to csv and parquet"
            )
        np.save(out, table.weights, allow_pickle=False)
        print(f"wrote {len(table):,} weights of revision {table.revision} to {out}")
        return 0
    columns = None
    if args.columns is not None:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    record = table.export(
        out,
        where=args.where,
        columns=columns,
        format=fmt,
        include_excluded=args.include_excluded,
    )
    skipped = len(table) - record["rows"]
    print(
        f"wrote {record['rows']:,} rows of revision {table.revision} to {out}"
        + (f" ({skipped:,} rows left out)" if skipped else "")
        + (f"; provenance in {out.name}.json" if fmt == "csv" else "")
    )
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


def packaged_notebooks() -> list[str]:
    """Names of the demo notebooks shipped inside the package (wheel installs)."""
    folder = Path(__file__).parent / "notebooks"
    return sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []


def _demo_notebook(folder: Path, name: str = "quickstart") -> Path:
    """Notebook ``name`` in ``folder``: the repository's, or a copy of the packaged one."""
    target = folder / f"{name}.ipynb"
    if target.exists():
        return target
    packaged = Path(__file__).parent / "notebooks" / f"{name}.ipynb"
    if not packaged.exists():
        shipped = packaged_notebooks()
        raise FileNotFoundError(
            f"no {name}.ipynb in {folder} and none packaged with weightwidget"
            + (
                f" (packaged: {', '.join(shipped)})"
                if shipped
                else "; run from the repository (scripts/demo) or pass --dir to a folder "
                "that has it"
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(packaged, target)
    return target


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir).resolve()
    notebook = _demo_notebook(folder, args.notebook.removesuffix(".ipynb"))
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
    if getattr(os, "geteuid", lambda: 1)() == 0:
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
    p.add_argument(
        "--limit",
        type=_count(1, "--limit"),
        default=None,
        help="only the last N revisions (N >= 1; default: all)",
    )
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("show", help="class balance table, now or at a revision")
    p.add_argument("store", metavar="STORE")
    p.add_argument(
        "--revision", "-r", type=_count(0, "--revision"), default=None, help="revision to show"
    )
    p.add_argument(
        "--num-samples",
        type=_count(1, "--num-samples"),
        default=None,
        help="draws per epoch for expected_draws (N >= 1; default: included labelled rows)",
    )
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="rows whose weight or label differs between two revisions")
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
    p.add_argument(
        "--limit",
        type=_count(0, "--limit"),
        default=50,
        help="rows to print (default 50; 0 prints only the count)",
    )
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("revert", help="restore a revision's weights and labels as a new revision")
    p.add_argument("store", metavar="STORE")
    p.add_argument("revision", type=int, metavar="REV")
    p.add_argument("--message", "-m", default=None, help="revision message")
    p.set_defaults(func=cmd_revert)

    p = sub.add_parser(
        "export",
        help="write the curated rows (parquet, csv) or the weight vector (npy) to a file",
        description=(
            "csv and parquet: the rows that train (weight > 0 and labelled, or every row "
            "with --include-excluded) with row id, label, weight and data columns, and the "
            "table name, revision and store in the file's metadata (parquet) or in "
            "<file>.json (csv), as WeightTable.export writes them. npy: the whole weight "
            "vector in dataset order."
        ),
    )
    p.add_argument("store", metavar="STORE")
    p.add_argument(
        "--format",
        "-f",
        choices=EXPORT_FORMATS,
        default=None,
        help="default: from the --output suffix, else parquet",
    )
    p.add_argument("--output", "-o", default=None, help="file to write")
    p.add_argument(
        "--revision", "-r", type=_count(0, "--revision"), default=None, help="default: newest"
    )
    p.add_argument("--where", "-w", default=None, help="a filter: only the rows it matches")
    p.add_argument(
        "--columns",
        "-c",
        default=None,
        help="comma-separated data columns (default: all but images; '' for none)",
    )
    p.add_argument(
        "--include-excluded",
        action="store_true",
        help="also write rows with weight 0 and unlabelled rows",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("compact", help="rewrite old snapshots compactly (no revision changes)")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("demo", help="open a demo notebook (default: quickstart) in JupyterLab")
    p.add_argument(
        "notebook",
        nargs="?",
        default="quickstart",
        metavar="NOTEBOOK",
        help="which demo: quickstart (default), tensorflow, ... (shipped with the package)",
    )
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
