import { describe, expect, it } from "vitest";
import { Summaries, VALUES_SHOWN, drawHistogram, drawValues } from "../clients/summaries";
import { EXAMPLES, type HistogramSummary, type ValuesSummary } from "../types";

const hist: HistogramSummary = {
  name: "loss",
  kind: "histogram",
  edges: [0, 1, 2, 3, 4],
  integer: false,
  counts: [5, 0, 30, 1],
  totals: [50, 100, 30, 20],
  missing: 7,
  matched: 36,
  brush: null,
};
const values: ValuesSummary = {
  name: "caption",
  kind: "values",
  values: [
    { value: "<b>dog</b>", count: 20, total: 400, filter: 'caption == "<b>dog</b>"' },
    { value: "cat", count: 10, total: 300, filter: 'caption == "cat"' },
    { value: "bird", count: 5, total: 200, filter: 'caption == "bird"' },
    { value: "fish", count: 1, total: 100, filter: 'caption == "fish"' },
  ],
  other: 0,
  distinct: 4,
  missing: 2,
  matched: 38,
  picked: null,
};

function handlers() {
  const calls: unknown[][] = [];
  return {
    calls,
    opts: {
      onBrush: (c: string, lo: number, hi: number) => calls.push(["brush", c, lo, hi]),
      onPick: (c: string, v: string) => calls.push(["pick", c, v]),
      onClear: (c: string) => calls.push(["clear", c]),
    },
  };
}

function pointer(target: Element, type: string, clientX: number) {
  const e = new MouseEvent(type, { bubbles: true, clientX });
  target.dispatchEvent(e);
}

function mountChart(s: HistogramSummary) {
  const { calls, opts } = handlers();
  const cell = document.createElement("div");
  document.body.replaceChildren(cell);
  drawHistogram(cell, s, opts);
  const chart = cell.querySelector<HTMLElement>(".ww-hist-chart")!;
  chart.getBoundingClientRect = () => ({ left: 100, width: 200, top: 0, height: 38 }) as DOMRect;
  return { cell, chart, calls };
}

describe("histogram summary", () => {
  it("draws matched bars over all rows' bars on one scale", () => {
    const { cell } = mountChart(hist);
    const bins = cell.querySelectorAll<HTMLElement>(".ww-bin");
    expect(bins.length).toBe(4);
    const h = (sel: string) => Array.from(cell.querySelectorAll<HTMLElement>(sel), (b) => b.style.height);
    expect(h(".ww-bin-total")).toEqual(["50%", "100%", "30%", "20%"]);
    expect(h(".ww-bin-match")).toEqual(["5%", "0%", "30%", "1%"]);
    expect(bins[2]!.title).toBe("loss 2 – 3: 30 of 30");
    expect(cell.querySelector(".ww-sum-axis")!.textContent).toBe("0∅ 74");
  });

  it("a filter matching few rows zooms in on them; all rows' bars are cut at the top", () => {
    const few = { ...hist, counts: [2, 0, 4, 1], matched: 7 };
    const { cell } = mountChart(few);
    const h = (sel: string) => Array.from(cell.querySelectorAll<HTMLElement>(sel), (b) => b.style.height);
    expect(h(".ww-bin-match")).toEqual(["42.5%", "0%", "85%", "21.25%"]);
    expect(h(".ww-bin-total")).toEqual(["100%", "100%", "100%", "100%"]);
    expect(cell.querySelector(".ww-hist-chart")!.classList.contains("ww-zoomed")).toBe(true);
  });

  it("integer bins are labelled by their values", () => {
    const { cell } = mountChart({ ...hist, integer: true });
    expect(cell.querySelector(".ww-sum-axis")!.textContent).toBe("0∅ 73");
    expect(cell.querySelector<HTMLElement>(".ww-bin")!.title).toBe("loss 0: 5 of 50");
  });

  it("a drag brushes a range in data units; a click brushes one bin", () => {
    const { chart, calls } = mountChart(hist);
    pointer(chart, "pointerdown", 150); // 25% -> 1.0
    pointer(chart, "pointermove", 230);
    expect(chart.querySelector<HTMLElement>(".ww-brush")!.style.width).toBe("40%");
    pointer(chart, "pointerup", 250); // 75% -> 3.0
    expect(calls).toEqual([["brush", "loss", 1, 3]]);
    pointer(chart, "pointerdown", 260);
    pointer(chart, "pointerup", 261); // 80%: bin 3
    expect(calls.at(-1)).toEqual(["brush", "loss", 3, 4]);
  });

  it("shows the active brush with a clear button", () => {
    const { cell, calls } = mountChart({ ...hist, brush: [1, 3] });
    const band = cell.querySelector<HTMLElement>(".ww-brush")!;
    expect([band.style.left, band.style.width]).toEqual(["25%", "50%"]);
    cell.querySelector<HTMLButtonElement>(".ww-sum-clear")!.click();
    expect(calls).toEqual([["clear", "loss"]]);
  });
});

describe("values summary", () => {
  it("lists the top values as text with bars; a click picks, again clears", () => {
    const { calls, opts } = handlers();
    const cell = document.createElement("div");
    document.body.replaceChildren(cell);
    drawValues(cell, values, opts);
    const rows = cell.querySelectorAll<HTMLElement>(".ww-vrow");
    expect(rows.length).toBe(VALUES_SHOWN);
    expect(rows[0]!.querySelector(".ww-vname")!.textContent).toBe("<b>dog</b>");
    expect(cell.querySelector("b")).toBeNull();
    expect(rows[1]!.querySelector<HTMLElement>(".ww-vfill")!.style.width).toBe("50%");
    expect(cell.querySelector(".ww-vmore")!.textContent).toBe("+1 more · ∅ 2");
    rows[1]!.click();
    expect(calls).toEqual([["pick", "caption", "cat"]]);
    drawValues(cell, { ...values, picked: "cat" }, opts);
    const picked = cell.querySelector<HTMLElement>(".ww-vrow.ww-picked")!;
    expect(picked.dataset.value).toBe("cat");
    picked.click();
    expect(calls.at(-1)).toEqual(["clear", "caption"]);
  });
});

describe("Summaries", () => {
  it("draws the contract's example summaries into the attached cells", () => {
    const { opts } = handlers();
    const s = new Summaries(opts);
    const cells = new Map(["loss", "caption"].map((n) => [n, document.createElement("div")]));
    s.attach(cells);
    s.update(EXAMPLES.replies.summaries!.content.summaries);
    expect(s.drawn).toEqual(["loss", "caption"]);
    expect(cells.get("loss")!.querySelectorAll(".ww-bin").length).toBe(3);
    expect(cells.get("caption")!.querySelectorAll(".ww-vrow").length).toBe(2);
    s.invalidate();
    expect(s.drawn).toEqual([]);
  });
});
