"""Widget figures at 1,000,000 rows beside quak 0.3.5 measured in the same run.

    python -m benchmarks widget [--quick]

quak (``pip install "weightwidget[bench]"``) keeps the frame in DuckDB and its page
sends SQL; every quak figure here runs the SQL its page sends for the same step
(read from quak's and mosaic's source), through quak's own message handler, which
answers with Arrow IPC. Ours answers the same step through the widget's handler.
Both sides include serialising the reply; neither includes the browser.

``run(quick=False)`` returns rows ``{"name", "value", "unit", "target", "anchor",
"anchor_value", "ratio"}``; ``ratio`` is ours / anchor (below 1: we are ahead).
"""

from __future__ import annotations

import gc
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

from ._common import row  # noqa: E402

N = 1_000_000
PAGE = 100
TIMINGS = ROOT / "tests" / "browser" / "artifacts" / "timings.json"
QUAK = "quak 0.3.5 (DuckDB)"
#: quak's histogram bins (mosaic ``bin(column, {steps: 18})``).
QUAK_STEPS = 18


def frame(n: int = N) -> pd.DataFrame:
    """An int label, two float columns and a short text column."""
    rng = np.random.default_rng(0)
    p = np.array([30, 20, 12, 10, 8, 7, 5, 4, 3, 1], dtype=float)
    words = np.array([f"item {i}" for i in range(1000)], dtype=object)
    return pd.DataFrame(
        {
            "label": rng.choice(10, size=n, p=p / p.sum()),
            "loss": rng.gamma(2.0, 1.0, size=n),
            "confidence": rng.random(n),
            "caption": words[rng.integers(0, 1000, n)],
        }
    )


def _ms(fn: Any, repeat: int, setup: Any = None) -> float:
    """Median wall time of ``fn()`` in ms (``setup`` untimed before each call)."""
    out = []
    for i in range(repeat):
        if setup is not None:
            setup(i)
        gc.collect()
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def _state_bytes(widget: Any, bundle: bool = True) -> int:
    """Bytes of the first display's state (JSON, buffers) with or without the JS bundle."""
    from ipywidgets.widgets.widget import _remove_buffers

    state = widget.get_state()
    if not bundle:
        state = {k: v for k, v in state.items() if k not in ("_esm", "_css")}
    state, _, buffers = _remove_buffers(state)
    return len(json.dumps(state, default=str)) + sum(len(memoryview(b).cast("B")) for b in buffers)


class _Ours:
    """Requests through WeightWidget's handler, as the page sends them."""

    def __init__(self, w: WeightWidget) -> None:
        self.w = w
        self.sent: list[tuple[dict, list]] = []
        w.send = lambda content, buffers=None: self.sent.append((content, buffers or []))
        self.next = 1

    def ask(self, kind: str, **payload: Any) -> dict:
        self.next += 1
        self.w._on_msg(self.w, {"id": self.next, "kind": kind, **payload}, [])
        content, _ = self.sent[-1]
        if "error" in content:
            raise RuntimeError(content["error"])
        return content

    def summary_columns(self, skip: str = "") -> list[str]:
        return [c["name"] for c in self.w.columns if c["role"] != "row" and c["name"] != skip]


class _Quak:
    """SQL through quak's own handler, as its page sends it."""

    def __init__(self, widget: Any, columns: list[str]) -> None:
        self.w = widget
        self.columns = columns
        self.sent: list[tuple[dict, list]] = []
        widget.send = lambda content, buffers=None: self.sent.append((content, buffers or []))
        self.extents: dict[str, tuple[float, float]] = {}

    def arrow(self, sql: str) -> None:
        self.w._handle_custom_msg({"type": "arrow", "uuid": "b", "sql": sql}, [])
        if "error" in self.sent[-1][0]:
            raise RuntimeError(self.sent[-1][0]["error"])

    def select(self) -> str:
        return ", ".join(f'"{c}"' for c in self.columns)

    def page(self, where: str = "", order: str = "", offset: int = 0) -> None:
        w = f" WHERE {where}" if where else ""
        o = f" ORDER BY {order}" if order else ""
        self.arrow(f'SELECT {self.select()} FROM "df"{w}{o} LIMIT {PAGE} OFFSET {offset}')

    def count(self, where: str = "") -> None:
        w = f" WHERE {where}" if where else ""
        self.arrow(f'SELECT count(*) AS "count" FROM "df"{w}')

    def extent(self, col: str) -> tuple[float, float]:
        # mosaic asks each histogram's field info (min, max) once
        self.arrow(f'SELECT MIN("{col}") AS "min", MAX("{col}") AS "max" FROM "df"')
        lo, hi = self.w._conn.query(f'SELECT MIN("{col}"), MAX("{col}") FROM "df"').fetchall()[0]
        self.extents[col] = (float(lo), float(hi))
        return self.extents[col]

    def histogram(self, col: str, where: str = "") -> None:
        lo, hi = self.extents.get(col) or self.extent(col)
        step = _nice_step(hi - lo, QUAK_STEPS)
        start = float(np.floor(lo / step) * step)
        b = f'FLOOR(("{col}" - {start!r}) / {step!r})'
        w = f" WHERE {where}" if where else ""
        self.arrow(
            f'SELECT {start!r} + {step!r} * {b} AS "x1", {start!r} + {step!r} * ({b} + 1) AS "x2",'
            f' count(*) AS "y" FROM "df"{w} GROUP BY "x1", "x2"'
        )

    def value_counts(self, col: str, where: str = "") -> None:
        w = f" WHERE {where}" if where else ""
        self.arrow(
            f'WITH "counts" AS (SELECT CASE WHEN "{col}" IS NULL THEN \'__quak_null__\' ELSE '
            f'"{col}" END AS "value", count(*) AS "count" FROM "df"{w} GROUP BY "value") '
            'SELECT CASE WHEN "count" = 1 AND "value" != \'__quak_null__\' THEN '
            '\'__quak_unique__\' ELSE "value" END AS "key", sum("count") AS "total" '
            'FROM "counts" GROUP BY "key"'
        )

    def summary(self, col: str, where: str = "") -> None:
        if col == "caption":
            self.value_counts(col, where)
        else:
            self.histogram(col, where)


def _nice_step(span: float, steps: int) -> float:
    raw = span / steps
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def _pandas_counts(df: pd.DataFrame, k_loss: int, k_conf: int) -> dict[str, int]:
    """The suggestions panel's counts from scratch with pandas: the anchor."""
    inc = df["weight"] > 0
    labelled = df["label"] >= 0
    issue = df["issue"] & inc
    q_loss = df["loss"].nlargest(k_loss).iloc[-1]
    q_conf = df.loc[labelled, "confidence"].nsmallest(k_conf).iloc[-1]
    return {
        "label_issues": int(issue.sum()),
        "relabels": int((issue & (df["label"] != df["suggested"])).sum()),
        "hardest": int(((df["loss"] >= q_loss) & inc).sum()),
        "least_confident": int(((df["confidence"] <= q_conf) & inc & labelled).sum()),
        "label_next": int((~labelled).sum()),
        "excluded": int((df["weight"] == 0).sum()),
    }


def _suggestion_rows(w: WeightWidget, ours: _Ours, repeat: int) -> list[dict[str, Any]]:
    """The suggestions panel at 1,000,000 rows with a metrics run, a label-issue run and
    10,000 unlabelled rows: its counts after a weight edit and after a label edit (the
    request the page sends after every revision), beside the same counts recomputed from
    scratch with pandas."""
    t = w.table
    n, k = len(t), len(t.classes)
    rng = np.random.default_rng(1)
    ww.collect_metrics(t, rng.dirichlet(np.ones(k), n), run="m1")
    # the label-issue columns as find_label_issues writes them (its own figure is in the
    # curation group; here only the panel's counting is timed)
    t.set_columns(
        {
            "r1_label_issue": rng.random(n) < 0.05,
            "r1_label_quality": rng.random(n),
            "r1_suggested_label": rng.integers(0, k, n),
        },
        run="r1",
        info={"kind": "label_issues"},
    )
    t.set_labels(rng.choice(n, 10_000, replace=False), None, message="unlabel 10,000 rows")
    ours.ask("suggestions")  # thresholds and weight-free masks: once per column set
    edits = iter(range(10**6))

    def weight_edit(i: int) -> None:
        t.set_weights(rng.choice(n, 1000, replace=False), 0.0, message=f"edit {next(edits)}")

    def label_edit(i: int) -> None:
        t.set_labels(rng.choice(n, 1000, replace=False), 1, message=f"relabel {next(edits)}")

    def count(i: int) -> None:
        items = ours.ask("suggestions")["items"]
        assert len(items) == 6, [x["key"] for x in items]

    def frame() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "weight": t.weights,
                "label": t.label_codes,
                "issue": t.column("r1_label_issue"),
                "suggested": t.column("r1_suggested_label"),
                "loss": t.column("m1_loss"),
                "confidence": t.column("m1_confidence"),
            }
        )

    measured = int(np.isfinite(t.column("m1_loss")).sum())
    k_loss = int(np.ceil(0.01 * measured))
    k_conf = int(np.ceil(0.01 * t.n_labelled))
    anchor = _ms(lambda i: _pandas_counts(frame(), k_loss, k_conf), repeat)
    mine = {x["kind"]: x["count"] for x in ours.ask("suggestions")["items"]}
    assert mine == _pandas_counts(frame(), k_loss, k_conf), "the anchor counts differ"
    pandas = "pandas, the same counts from scratch"
    return [
        row(
            "suggestions panel: counts after a weight edit (6 lines, 2 runs)",
            _ms(count, repeat * 3, setup=weight_edit),
            "ms",
            "< 100 ms",
            pandas,
            anchor,
        ),
        row(
            "suggestions panel: counts after a label edit (thresholds again)",
            _ms(count, repeat, setup=label_edit),
            "ms",
            "< 100 ms",
            pandas,
            anchor,
        ),
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the widget and quak at 1,000,000 rows; return result rows."""
    import quak

    repeat = 3 if quick else 7
    builds = 1 if quick else 3
    df = frame(N)
    cols = list(df.columns)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")

        # ---- build + first page: table (or DuckDB registration), widget, state, first page
        widgets: list[Any] = []
        widget_share: list[float] = []

        def ours_build(i: int) -> None:
            t = ww.WeightTable.from_pandas(df, label="label", name="b", store=f"{tmp}/s{i}")
            t0 = time.perf_counter()
            w = WeightWidget(t)
            _state_bytes(w)
            _Ours(w).ask("rows", start=0, count=PAGE)
            widget_share.append((time.perf_counter() - t0) * 1000)
            widgets.append(w)

        def quak_build(i: int) -> None:
            q = quak.Widget(df)
            _state_bytes(q)
            qq = _Quak(q, cols)
            qq.count()
            qq.page()
            widgets.append(q)

        ours_ms = _ms(ours_build, builds)
        quak_ms = _ms(quak_build, builds)
        rows.append(row("build + first page", ours_ms, "ms", "< 1000 ms", QUAK, quak_ms))
        rows.append(
            row(
                "  of which widget + first state + first page (table built)",
                statistics.median(widget_share),
                "ms",
                "< 100 ms",
            )
        )
        w, q = widgets[0], widgets[builds]
        for x in widgets[1:builds]:
            x.close()
        rows.append(
            row(
                "initial state incl. JS bundle",
                _state_bytes(w) / 1024,
                "KB",
                "-",
                QUAK,
                _state_bytes(q) / 1024,
            )
        )
        rows.append(
            row(
                "initial state without the bundle",
                _state_bytes(w, bundle=False) / 1024,
                "KB",
                "-",
                QUAK,
                _state_bytes(q, bundle=False) / 1024,
            )
        )
        ours, qk = _Ours(w), _Quak(q, cols)

        # ---- sort by a float column + first page (each repetition a column/direction not
        # sorted before: no cache); our full sort continues in the background, awaited
        # untimed so it does not steal the next repetition's CPU
        combos = [(c, a) for c in ("loss", "confidence") for a in (True, False)]
        n_sorts = min(repeat, len(combos))

        def ours_sort(i: int) -> None:
            col, asc = combos[i]
            with w.hold_trait_notifications():
                w.sort_by, w.sort_ascending = col, asc
            ours.ask("rows", start=0, count=PAGE)

        def settle(i: int) -> None:
            if w.sort_by:
                ww.view.sort_order(w.table, w.sort_by, ascending=w.sort_ascending)
            w.sort_by = None

        def quak_sort(i: int) -> None:
            col, asc = combos[i]
            qk.page(order=f'"{col}" {"ASC" if asc else "DESC"} NULLS LAST')

        ours_ms = _ms(ours_sort, n_sorts, setup=settle)
        settle(0)
        rows.append(
            row(
                "sort by a float column + first page",
                ours_ms,
                "ms",
                "< 60 ms",
                QUAK,
                _ms(quak_sort, n_sorts),
            )
        )

        # ---- a page: 100 rows at position 500,000 (dataset order; then sorted by loss)
        rows.append(
            row(
                "100-row page at position 500,000",
                _ms(lambda i: ours.ask("rows", start=500_000, count=PAGE), repeat * 3),
                "ms",
                "< 3 ms",
                QUAK,
                _ms(lambda i: qk.page(offset=500_000), repeat),
            )
        )
        w.sort_by = "loss"
        ours.ask("rows", start=0, count=PAGE)
        ww.view.sort_order(w.table, "loss")
        rows.append(
            row(
                "100-row page at position 500,000, sorted by loss",
                _ms(lambda i: ours.ask("rows", start=500_000, count=PAGE), repeat * 3),
                "ms",
                "< 3 ms",
                QUAK,
                _ms(lambda i: qk.page(order='"loss" ASC NULLS LAST', offset=500_000), repeat),
            )
        )
        w.sort_by = None

        # ---- column summaries for all columns: first display (bins computed) and after a
        # new filter (bins cached; one bincount per column). quak recomputes each time
        names = ours.summary_columns()
        per = len(names)

        fresh: dict[str, WeightWidget] = {}

        def fresh_table(i: int) -> None:  # a newly opened table: no bins cached yet
            fresh["w"] = WeightWidget(ww.WeightTable.open(w.table.store_url))

        def ours_first(i: int) -> None:
            _Ours(fresh["w"]).ask("summaries", columns=names)

        def quak_first(i: int) -> None:
            qk.extents.clear()  # the page asks each column's extent once, at start
            for c in cols:
                qk.summary(c)

        thresholds = iter(np.linspace(0.5, 3.0, 64))

        def new_filter(i: int) -> None:
            w.filter = f"confidence > {next(thresholds):.3f}"

        def ours_filtered(i: int) -> None:
            ours.ask("summaries", columns=names)

        def quak_filtered(i: int) -> None:
            where = f'"confidence" > {0.5 + i / 100:.3f}'
            for c in cols:
                qk.summary(c, where)

        first = _ms(ours_first, repeat, setup=fresh_table) / per
        rows.append(
            row(
                f"column summaries, first display ({per} columns), per column",
                first,
                "ms",
                "< 50 ms",
                QUAK,
                _ms(quak_first, repeat) / len(cols),
            )
        )
        rows.append(
            row(
                f"column summaries after a new filter ({per} columns), per column",
                _ms(ours_filtered, repeat, setup=new_filter) / per,
                "ms",
                "< 50 ms",
                QUAK,
                _ms(quak_filtered, repeat) / len(cols),
            )
        )
        fresh.clear()
        w.filter = ""

        # ---- brushing round trip in the kernel: a brush on loss, then what the page asks
        # next: the first page and the other columns' summaries (quak: count, first page
        # and the other columns' histograms / value counts with the brush as WHERE)
        edges = ours.ask("summaries", columns=["loss"])["summaries"][0]["edges"]
        others = ours.summary_columns(skip="loss")

        def ours_brush(i: int) -> None:
            a = edges[1 + i % 4]
            ours.ask("brush", column="loss", lo=a, hi=a + 2 * (edges[1] - edges[0]))
            ours.ask("rows", start=0, count=PAGE)
            ours.ask("summaries", columns=others)

        def quak_brush(i: int) -> None:
            a = 0.5 + 0.5 * (i % 4)
            where = f'"loss" BETWEEN {a} AND {a + 1.0}'
            qk.count(where)
            qk.page(where=where)
            for c in cols:
                if c != "loss":
                    qk.summary(c, where)

        rows.append(
            row(
                "brushing round trip in the kernel (brush + page + other summaries)",
                _ms(ours_brush, repeat),
                "ms",
                "< 30 ms",
                QUAK,
                _ms(quak_brush, repeat),
            )
        )
        rows.extend(_suggestion_rows(w, ours, repeat))
        w.close()
        q.close()

    if TIMINGS.exists():  # written by the browser tests (tests/browser/artifacts)
        t = json.loads(TIMINGS.read_text())
        if "run_all_to_first_rows_s" in t:
            rows.append(
                row(
                    "Run All to first rows visible (browser, last test run)",
                    t["run_all_to_first_rows_s"] * 1000,
                    "ms",
                    "< 1500 ms",
                )
            )
            for key, what in (
                ("queue_s", "Jupyter starts the first cell"),
                ("imports_s", "imports (numpy, pandas, weightwidget)"),
                ("frame_s", "the data frame"),
                ("build_s", "building the table"),
                ("widget_s", "the widget (incl. importing anywidget)"),
                ("shown_to_rows_s", "cell done to first rows (bundle, render, page)"),
            ):
                if key in t:
                    rows.append(row(f"  of which {what}", t[key] * 1000, "ms", "-"))
        if "cell_to_first_rows_s" in t:
            rows.append(
                row(
                    "widget cell run to first rows visible (browser, last test run)",
                    t["cell_to_first_rows_s"] * 1000,
                    "ms",
                    "< 500 ms",
                )
            )
    return rows


if __name__ == "__main__":
    from ._common import print_table

    print_table(run(quick="--quick" in sys.argv), title="## widget")
