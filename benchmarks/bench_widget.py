"""Widget figures at 1,000,000 rows beside ipydatagrid anchors measured in the same run.

    python benchmarks/bench_widget.py [--quick]

``run(quick=False)`` returns rows ``{"name", "value", "unit", "target", "anchor",
"anchor_value", "ratio"}``; ``ratio`` is value / anchor_value (below 1: we are ahead).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import weightwidget as ww  # noqa: E402
from weightwidget.widget import WeightWidget  # noqa: E402

N = 1_000_000
TIMINGS = ROOT / "tests" / "browser" / "artifacts" / "timings.json"


def _ms(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in ms."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    p = np.array([30, 20, 12, 10, 8, 7, 5, 4, 3, 1], dtype=float)
    captions = [f"sample caption {i}" for i in range(1000)]
    return pd.DataFrame(
        {
            "label": rng.choice(10, size=n, p=p / p.sum()),
            "loss": rng.gamma(2.0, 1.0, size=n),
            "confidence": rng.random(n),
            "margin": rng.normal(size=n),
            "caption": pd.Categorical.from_codes(rng.integers(0, 1000, n), categories=captions),
        }
    )


class _Capture:
    def __init__(self, widget: Any, attr: str = "send") -> None:
        self.sent: list[tuple[Any, Any]] = []
        setattr(widget, attr, lambda content, buffers=None: self.sent.append((content, buffers)))


def _state_bytes(widget: Any, skip: tuple[str, ...] = ()) -> int:
    state = {k: v for k, v in widget.get_state().items() if k not in skip}
    state, _, buffers = _remove_buffers(state)
    return len(json.dumps(state, default=str)) + sum(len(memoryview(b).cast("B")) for b in buffers)


def _remove_buffers(state: dict) -> tuple[dict, list, list]:
    from ipywidgets.widgets.widget import _remove_buffers

    return _remove_buffers(state)


def _row(name, value, unit, target, anchor=None, anchor_value=None) -> dict[str, Any]:
    ratio = value / anchor_value if anchor_value else None
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "target": target,
        "anchor": anchor,
        "anchor_value": None if anchor_value is None else round(anchor_value, 3),
        "ratio": None if ratio is None else round(ratio, 4),
    }


def _anchors(df: pd.DataFrame, repeat: int) -> dict[str, float]:
    """ipydatagrid's DataGrid (ships the whole table) and StreamingDataGrid (viewport)."""
    import ipydatagrid

    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        grid = ipydatagrid.DataGrid(df)
        state = _state_bytes(grid)
        out["datagrid_init_ms"] = (time.perf_counter() - t0) * 1000
        out["datagrid_state_kb"] = state / 1024
        grid.close()
        del grid

        if hasattr(ipydatagrid, "StreamingDataGrid"):
            t0 = time.perf_counter()
            sg = ipydatagrid.StreamingDataGrid(df)
            state = _state_bytes(sg)
            out["streaming_init_ms"] = (time.perf_counter() - t0) * 1000
            out["streaming_state_kb"] = state / 1024
            cap = _Capture(sg)
            ncols = len(df.columns)

            def page() -> None:
                sg._handle_comm_msg(
                    None, {"type": "data-request", "r1": 0, "r2": 99, "c1": 0, "c2": ncols}, []
                )

            out["streaming_page_ms"] = _ms(page, repeat * 5)
            cols = ["loss", "confidence", "margin"]

            def sort_first(i: list[int] = [0]) -> None:  # noqa: B006 - a counter
                col = cols[i[0] % len(cols)]
                desc = bool(i[0] // len(cols) % 2)
                i[0] += 1
                sg._transforms = [{"type": "sort", "column": col, "desc": desc}]
                page()

            out["streaming_sort_ms"] = _ms(sort_first, min(repeat, 6))

            def filt(i: list[int] = [0]) -> None:  # noqa: B006 - a counter
                i[0] += 1
                sg._transforms = [
                    {"type": "filter", "column": "label", "operator": "=", "value": 3},
                    {"type": "filter", "column": "loss", "operator": ">", "value": 2 + i[0] / 100},
                ]

            out["streaming_filter_ms"] = _ms(filt, repeat)
            del cap
            sg.close()
    return out


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the widget at 1,000,000 rows and the anchors; return result rows."""
    repeat = 3 if quick else 7
    df = _frame(N)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        table = ww.WeightTable.from_pandas(df, label="label", name="bench", store=f"{tmp}/s")
        anchors = _anchors(df, repeat)

        # construction + initial state (what the first display ships)
        def build() -> WeightWidget:
            w = WeightWidget(table)
            _state_bytes(w, skip=("_esm", "_css"))
            return w

        init_ms = _ms(lambda: build().close(), repeat)
        w = build()
        static = ROOT / "weightwidget" / "static"
        bundle = (static / "widget.js").stat().st_size + (static / "widget.css").stat().st_size
        init_kb = (_state_bytes(w, skip=("_esm", "_css")) + bundle) / 1024
        rows.append(
            _row(
                "construction + initial state",
                init_ms,
                "ms",
                "< 50 ms",
                "ipydatagrid.DataGrid",
                anchors["datagrid_init_ms"],
            )
        )
        rows.append(
            _row(
                "initial state incl. JS bundle",
                init_kb,
                "KB",
                "< 300 KB",
                "ipydatagrid.DataGrid",
                anchors["datagrid_state_kb"],
            )
        )
        if "streaming_init_ms" in anchors:
            rows.append(
                _row(
                    "construction + initial state",
                    init_ms,
                    "ms",
                    "< 50 ms",
                    "ipydatagrid.StreamingDataGrid",
                    anchors["streaming_init_ms"],
                )
            )
            rows.append(
                _row(
                    "initial state incl. JS bundle",
                    init_kb,
                    "KB",
                    "< 300 KB",
                    "ipydatagrid.StreamingDataGrid",
                    anchors["streaming_state_kb"],
                )
            )

        cap = _Capture(w)
        ids = iter(range(1, 10**9))

        def ask(kind: str, **payload: Any) -> dict:
            w._on_msg(w, {"id": next(ids), "kind": kind, **payload}, [])
            content = cap.sent[-1][0]
            assert "error" not in content, content
            return content

        page_ms = _ms(lambda: ask("rows", start=500_000, count=100), repeat * 5)
        rows.append(
            _row(
                "100-row page",
                page_ms,
                "ms",
                "< 3 ms",
                "ipydatagrid.StreamingDataGrid",
                anchors.get("streaming_page_ms"),
            )
        )

        sorts = [(c, a) for a in (True, False) for c in ("loss", "confidence", "margin")]
        times = []
        for col, asc in sorts[: min(repeat, len(sorts))]:
            w.sort_by = None
            if w._pending is not None:
                w._pending[3].result()  # let the previous background sort finish (untimed)
            t0 = time.perf_counter()
            w.sort_ascending = asc
            w.sort_by = col
            ask("rows", start=0, count=100)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append(
            _row(
                "sort by a float column + first page",
                statistics.median(times),
                "ms",
                "< 60 ms",
                "ipydatagrid.StreamingDataGrid",
                anchors.get("streaming_sort_ms"),
            )
        )
        w.sort_by = None
        if w._pending is not None:
            w._pending[3].result()

        thresholds = iter(np.arange(2.0, 3.0, 0.01))

        def filt() -> None:
            w.filter = f"label == 3 and loss > {next(thresholds):.2f}"

        rows.append(
            _row(
                "filter (label == 3 and loss > x)",
                _ms(filt, repeat),
                "ms",
                "< 30 ms",
                "ipydatagrid.StreamingDataGrid",
                anchors.get("streaming_filter_ms"),
            )
        )

        edits = iter([0.5, 2.0] * 20)

        def bulk() -> None:
            ask("bulk", action="set", target="matched", value=next(edits))

        w.filter = "label == 3 and loss > 2"
        bulk_ms = _ms(bulk, repeat)
        rows.append(
            _row(
                f"bulk edit of {w.matched:,} filtered rows (commit + histogram)",
                bulk_ms,
                "ms",
                "< 80 ms",
            )
        )
        w.close()

    if TIMINGS.exists():
        t = json.loads(TIMINGS.read_text())
        rows.append(
            _row(
                "cell run to first rows visible (browser)",
                t["cell_to_first_rows_s"] * 1000,
                "ms",
                "< 1500 ms",
            )
        )
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    head = ["name", "value", "unit", "target", "anchor", "anchor_value", "ratio"]
    cells = [[("" if r[h] is None else str(r[h])) for h in head] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(wd) for h, wd in zip(head, widths, strict=True)))
    for c in cells:
        print("  ".join(x.ljust(wd) for x, wd in zip(c, widths, strict=True)))


if __name__ == "__main__":
    _print(run(quick="--quick" in sys.argv))
