// Class balance panel: per class the raw count share beside the effective (weighted)
// share (the table's summary is in the toolbar's status band). Clicking a class asks to
// filter to it (again: clear).
import { formatCount, formatNumber, formatShare } from "../format";
import type { ClassInfo } from "../types";

export interface HistogramOptions {
  /** Called with the filter text to apply ("" clears it). */
  onFilter: (filter: string) => void;
}

export interface HistogramState {
  classes: ClassInfo[];
  filter: string;
  label: string;
}

export class Histogram {
  #opts: HistogramOptions;
  #root: HTMLDivElement;
  #list: HTMLDivElement;
  #title: HTMLDivElement;
  #state: HistogramState = {
    classes: [],
    filter: "",
    label: "label",
  };

  constructor(options: HistogramOptions) {
    this.#opts = options;
    this.#root = document.createElement("div");
    this.#root.className = "ww-hist";
    this.#title = document.createElement("div");
    this.#title.className = "ww-panel-title";
    const legend = document.createElement("div");
    legend.className = "ww-legend";
    for (const [cls, text] of [
      ["ww-bar-raw", "raw count"],
      ["ww-bar-eff", "effective share"],
    ] as const) {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = `ww-swatch ${cls}`;
      item.append(swatch, document.createTextNode(text));
      legend.append(item);
    }
    this.#list = document.createElement("div");
    this.#list.className = "ww-classes";
    this.#list.setAttribute("role", "list");
    this.#root.append(this.#title, legend, this.#list);
  }

  node(): HTMLElement {
    return this.#root;
  }

  update(next: Partial<HistogramState>): void {
    this.#state = { ...this.#state, ...next };
    this.#render();
  }

  #render(): void {
    const { classes, filter, label } = this.#state;
    this.#title.textContent = `Classes of ${label} (${classes.length})`;
    const max = Math.max(1e-12, ...classes.map((c) => Math.max(c.share, c.effective_share)));
    const rows = classes.map((c) => {
      const active = filter !== "" && filter === c.filter;
      const row = document.createElement("div");
      row.className = "ww-class" + (active ? " ww-active" : "");
      row.setAttribute("role", "listitem");
      row.tabIndex = 0;
      row.dataset.value = c.value;
      row.title =
        `${label} = ${c.value}: ${formatCount(c.count)} rows (${formatShare(c.share)}), ` +
        `weight ${formatNumber(c.weight_sum)} (${formatShare(c.effective_share)} effective)` +
        (active ? " — click to clear the filter" : " — click to filter to this class");
      const name = document.createElement("span");
      name.className = "ww-class-name";
      name.textContent = c.value;
      const bars = document.createElement("span");
      bars.className = "ww-bars";
      for (const [cls, v] of [
        ["ww-bar-raw", c.share],
        ["ww-bar-eff", c.effective_share],
      ] as const) {
        const bar = document.createElement("span");
        bar.className = `ww-bar ${cls}`;
        bar.style.width = `${Math.max(0, Math.min(100, (v / max) * 100))}%`;
        bars.append(bar);
      }
      const nums = document.createElement("span");
      nums.className = "ww-class-nums";
      nums.textContent = `${formatShare(c.share)} → ${formatShare(c.effective_share)}`;
      row.append(name, bars, nums);
      const pick = () => this.#opts.onFilter(active ? "" : c.filter);
      row.addEventListener("click", pick);
      row.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          e.stopPropagation();
          pick();
        }
      });
      return row;
    });
    this.#list.replaceChildren(...rows);
  }
}
