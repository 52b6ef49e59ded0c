// Column summaries above the table's columns, like quak's: a histogram of each numeric
// column (the matched rows over all rows' bars) and the top values of each text, bool or
// label column. Brushing a histogram range or clicking a value asks for that condition in
// the filter; the kernel writes it (quoted) into the filter text. Drawing only: the
// numbers come from the kernel (summaries are computed there on the matched rows).
import { formatCount, formatNumber } from "../format";
import type { ColumnSummary, HistogramSummary, ValuesSummary } from "../types";

export interface SummariesOptions {
  /** A brushed range [lo, hi] in data units (the kernel snaps it to whole bins). */
  onBrush: (column: string, lo: number, hi: number) => void;
  /** A clicked top value. */
  onPick: (column: string, value: string) => void;
  /** Remove the column's condition from the filter. */
  onClear: (column: string) => void;
}

/** How many top values a cell lists (the rest are counted in its title). */
export const VALUES_SHOWN = 3;
/** A drag shorter than this many pixels is a click on one bar. */
const CLICK_PX = 3;

export class Summaries {
  #opts: SummariesOptions;
  #cells = new Map<string, HTMLElement>();
  #last = new Map<string, ColumnSummary>();

  constructor(options: SummariesOptions) {
    this.#opts = options;
  }

  /** The table's summary cells (one per column, by name); drawn into on update. */
  attach(cells: Map<string, HTMLElement>): void {
    this.#cells = cells;
    this.#last.clear();
  }

  /** Names of the columns whose summaries were drawn from the current data. */
  get drawn(): string[] {
    return [...this.#last.keys()];
  }

  /** Forget what is drawn (a new view: everything is refetched, old drawings stay until then). */
  invalidate(): void {
    this.#last.clear();
  }

  update(summaries: ColumnSummary[]): void {
    for (const s of summaries) {
      const cell = this.#cells.get(s.name);
      if (!cell) continue;
      this.#last.set(s.name, s);
      if (s.kind === "histogram") drawHistogram(cell, s, this.#opts);
      else drawValues(cell, s, this.#opts);
    }
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clearButton(column: string, opts: SummariesOptions): HTMLButtonElement {
  const b = el("button", "ww-sum-clear", "×");
  b.type = "button";
  b.title = `remove the condition on ${column} from the filter`;
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    opts.onClear(column);
  });
  return b;
}

/** Bars of all rows (background) and of the matched rows (front), one scale for both. */
export function drawHistogram(cell: HTMLElement, s: HistogramSummary, opts: SummariesOptions): void {
  const n = s.counts.length;
  const lo = s.edges[0]!;
  const hi = s.edges[n]!;
  // one scale for both, as in quak; but when the filter matches few rows, the scale
  // follows the matched bars (all rows' bars are then cut at the top), so the shape of
  // the matched rows stays visible
  const maxTotal = Math.max(1, ...s.totals);
  const maxCount = Math.max(0, ...s.counts);
  const zoomed = maxCount > 0 && maxCount < maxTotal / 4;
  const max = zoomed ? maxCount / 0.85 : maxTotal;
  const pct = (v: number) => `${Math.min(100, (v / max) * 100)}%`;
  const chart = el("div", "ww-hist-chart");
  chart.dataset.column = s.name;
  chart.classList.toggle("ww-zoomed", zoomed);
  chart.title = `${s.name}: drag to filter a range, click a bar for one bin`;
  for (let i = 0; i < n; i++) {
    const bin = el("div", "ww-bin");
    const total = el("div", "ww-bin-total");
    total.style.height = pct(s.totals[i]!);
    const match = el("div", "ww-bin-match");
    const c = s.counts[i]!;
    match.style.height = pct(c);
    if (c > 0) match.style.minHeight = "1px"; // a few matched rows stay visible
    const range = s.integer && s.edges[i + 1]! - s.edges[i]! === 1
      ? formatNumber(s.edges[i]!)
      : `${formatNumber(s.edges[i]!)} – ${formatNumber(s.edges[i + 1]!)}`;
    bin.title = `${s.name} ${range}: ${formatCount(c)} of ${formatCount(s.totals[i]!)}`;
    bin.append(total, match);
    chart.append(bin);
  }
  const band = el("div", "ww-brush");
  const place = (a: number, b: number) => {
    band.style.left = `${Math.min(a, b) * 100}%`;
    band.style.width = `${Math.abs(b - a) * 100}%`;
    band.style.display = "";
  };
  band.style.display = "none";
  if (s.brush && hi > lo) place((s.brush[0]! - lo) / (hi - lo), (s.brush[1]! - lo) / (hi - lo));
  chart.append(band);

  // brushing: pointer down, drag, up; the kernel snaps the range outwards to whole bins
  let start: number | null = null;
  const frac = (e: PointerEvent) => {
    const r = chart.getBoundingClientRect();
    return r.width > 0 ? Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) : 0;
  };
  chart.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    e.stopPropagation();
    start = frac(e);
    chart.setPointerCapture?.(e.pointerId);
    place(start, start);
  });
  chart.addEventListener("pointermove", (e) => {
    if (start !== null) place(start, frac(e));
  });
  chart.addEventListener("pointerup", (e) => {
    if (start === null) return;
    const a = start;
    const b = frac(e);
    start = null;
    const width = chart.getBoundingClientRect().width;
    if (Math.abs(b - a) * width < CLICK_PX) {
      const i = Math.min(n - 1, Math.floor(a * n));
      opts.onBrush(s.name, s.edges[i]!, s.edges[i + 1]!);
    } else {
      const x = (f: number) => lo + f * (hi - lo);
      opts.onBrush(s.name, x(Math.min(a, b)), x(Math.max(a, b)));
    }
  });
  const axis = el("div", "ww-sum-axis");
  axis.append(el("span", "", formatNumber(lo)));
  if (s.missing > 0) axis.append(el("span", "ww-sum-missing", `∅ ${formatCount(s.missing)}`));
  // integer bins hold one value each: label the last value, not the last edge
  axis.append(el("span", "", formatNumber(s.integer ? hi - 1 : hi)));
  const parts: HTMLElement[] = [chart, axis];
  if (s.brush) parts.push(clearButton(s.name, opts));
  cell.replaceChildren(...parts);
  cell.classList.toggle("ww-sum-active", s.brush !== null);
}

/** The top values by matched count; a click filters to one (again: removes it). */
export function drawValues(cell: HTMLElement, s: ValuesSummary, opts: SummariesOptions): void {
  const shown = s.values.slice(0, VALUES_SHOWN);
  const max = Math.max(1, ...shown.map((v) => v.count));
  const list = el("div", "ww-vlist");
  for (const v of shown) {
    const picked = s.picked === v.value;
    const row = el("div", `ww-vrow${picked ? " ww-picked" : ""}`);
    row.dataset.value = v.value;
    row.tabIndex = 0;
    row.title =
      `${s.name} = ${v.value}: ${formatCount(v.count)} matched of ${formatCount(v.total)}` +
      (picked ? " (click to remove)" : " (click to filter)");
    const name = el("span", "ww-vname", v.value);
    const bar = el("span", "ww-vbar");
    const fill = el("span", "ww-vfill");
    fill.style.width = `${(v.count / max) * 100}%`;
    bar.append(fill);
    const count = el("span", "ww-vcount", formatCount(v.count));
    row.append(name, bar, count);
    const act = () => (picked ? opts.onClear(s.name) : opts.onPick(s.name, v.value));
    row.addEventListener("click", (e) => {
      e.stopPropagation();
      act();
    });
    row.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        e.stopPropagation();
        act();
      }
    });
    list.append(row);
  }
  const rest = s.distinct - shown.filter((v) => v.count > 0).length;
  const more = el("div", "ww-vmore", rest > 0 ? `+${formatCount(rest)} more` : s.matched === 0 ? "no rows" : "");
  if (s.missing > 0) more.textContent += `${more.textContent ? " · " : ""}∅ ${formatCount(s.missing)}`;
  const parts: HTMLElement[] = [list, more];
  if (s.picked !== null && !shown.some((v) => v.value === s.picked)) parts.push(clearButton(s.name, opts));
  cell.replaceChildren(...parts);
  cell.classList.toggle("ww-sum-active", s.picked !== null);
}
