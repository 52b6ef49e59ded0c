// Toolbar: the filter box (debounced, errors inline with their position), the match and
// selection counts, bulk weight actions, undo/redo, the busy state and a status line.
import { formatCount, parseWeight } from "../format";
import type { BulkAction, FilterErrorInfo, Target } from "../types";

/** What the status band reports when there is no message: the table at a glance. */
export interface StatusSummary {
  rows: number;
  matched: number;
  included: number;
  ess: number;
  revision: number;
}

export interface ToolbarOptions {
  onFilter: (text: string) => void;
  onBulk: (action: BulkAction, target: Target, value?: number) => void;
  onSelectAll: () => void;
  onClearSelection: () => void;
  onUndo: () => void;
  onRedo: () => void;
  debounceMs?: number;
}

export interface ToolbarState {
  filter: string;
  filterError: FilterErrorInfo | null;
  matched: number;
  total: number;
  selectedCount: number;
  selectAll: boolean;
  busy: boolean;
  canUndo: boolean;
  canRedo: boolean;
  status: { text: string; kind: "error" | "info" } | null;
  summary: StatusSummary | null;
}

function button(text: string, title: string, cls = ""): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.className = `ww-btn ${cls}`.trim();
  b.textContent = text;
  b.title = title;
  return b;
}

export class Toolbar {
  #opts: ToolbarOptions;
  #root: HTMLDivElement;
  #input: HTMLInputElement;
  #error: HTMLDivElement;
  #counts: HTMLSpanElement;
  #selectAllBtn: HTMLButtonElement;
  #clearBtn: HTMLButtonElement;
  #target: HTMLSelectElement;
  #value: HTMLInputElement;
  #busy: HTMLSpanElement;
  #undo: HTMLButtonElement;
  #redo: HTMLButtonElement;
  #status: HTMLDivElement;
  #summary: HTMLSpanElement;
  #message: HTMLSpanElement;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sent: string | null = null;
  #state: ToolbarState = {
    filter: "",
    filterError: null,
    matched: 0,
    total: 0,
    selectedCount: 0,
    selectAll: false,
    busy: false,
    canUndo: true,
    canRedo: true,
    status: null,
    summary: null,
  };

  constructor(options: ToolbarOptions) {
    this.#opts = options;
    this.#root = document.createElement("div");
    this.#root.className = "ww-toolbar";

    const row1 = document.createElement("div");
    row1.className = "ww-bar-row";
    this.#input = document.createElement("input");
    this.#input.type = "text";
    this.#input.className = "ww-filter";
    this.#input.placeholder = "filter, e.g. label == 3 and loss > 2";
    this.#input.setAttribute("aria-label", "filter");
    this.#input.spellcheck = false;
    this.#input.addEventListener("input", () => this.#typed());
    this.#input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        this.#flush();
      } else if (e.key === "Escape") {
        this.#input.value = this.#state.filter;
        clearTimeout(this.#timer);
        this.#render();
      }
    });
    this.#counts = document.createElement("span");
    this.#counts.className = "ww-counts";
    this.#busy = document.createElement("span");
    this.#busy.className = "ww-busy";
    this.#busy.setAttribute("role", "status");
    this.#busy.textContent = "working…";
    this.#undo = button("↶ Undo", "undo the last revision (Ctrl/Cmd-Z)", "ww-undo");
    this.#undo.addEventListener("click", () => this.#opts.onUndo());
    this.#redo = button("↷ Redo", "redo (Shift-Ctrl/Cmd-Z)", "ww-redo");
    this.#redo.addEventListener("click", () => this.#opts.onRedo());
    row1.append(this.#input, this.#counts, this.#busy, this.#undo, this.#redo);

    this.#error = document.createElement("div");
    this.#error.className = "ww-filter-error";
    this.#error.setAttribute("role", "alert");

    const row2 = document.createElement("div");
    row2.className = "ww-bar-row ww-actions";
    this.#selectAllBtn = button("Select all matching", "select every row the filter matches (Ctrl/Cmd-A)");
    this.#selectAllBtn.addEventListener("click", () => this.#opts.onSelectAll());
    this.#clearBtn = button("Clear", "clear the selection");
    this.#clearBtn.addEventListener("click", () => this.#opts.onClearSelection());
    const apply = document.createElement("span");
    apply.className = "ww-apply-label";
    apply.textContent = "Apply to";
    this.#target = document.createElement("select");
    this.#target.className = "ww-target";
    this.#target.setAttribute("aria-label", "rows to change");
    for (const [v, t] of [
      ["selection", "selected rows"],
      ["matched", "all matching rows"],
    ]) {
      const o = document.createElement("option");
      o.value = v!;
      o.textContent = t!;
      this.#target.append(o);
    }
    this.#value = document.createElement("input");
    this.#value.type = "text";
    this.#value.className = "ww-value";
    this.#value.value = "1";
    this.#value.setAttribute("aria-label", "value or factor");
    this.#value.addEventListener("input", () => this.#value.classList.remove("ww-invalid"));
    const withValue = (action: BulkAction) => () => {
      const parsed = parseWeight(this.#value.value);
      if ("error" in parsed) {
        this.#value.classList.add("ww-invalid");
        this.#value.title = parsed.error;
        this.update({ status: { text: parsed.error, kind: "error" } });
        return;
      }
      this.#opts.onBulk(action, this.#targetValue(), parsed.value);
    };
    const set = button("Set", "set the weight of the rows to the value", "ww-set");
    set.addEventListener("click", withValue("set"));
    const mul = button("× Multiply", "multiply the weight of the rows by the value", "ww-scale");
    mul.addEventListener("click", withValue("scale"));
    const exc = button("Exclude (0)", "set weight 0: never sampled", "ww-exclude");
    exc.addEventListener("click", () => this.#opts.onBulk("exclude", this.#targetValue()));
    const inc = button("Include (1)", "set weight 1", "ww-include");
    inc.addEventListener("click", () => this.#opts.onBulk("include", this.#targetValue()));
    const bal = button("Rebalance", "inverse-frequency weights by class over the rows", "ww-balance");
    bal.addEventListener("click", () => this.#opts.onBulk("balance", this.#targetValue()));
    row2.append(this.#selectAllBtn, this.#clearBtn, apply, this.#target, this.#value, set, mul, exc, inc, bal);

    this.#status = document.createElement("div");
    this.#status.className = "ww-status";
    this.#status.setAttribute("role", "status");
    this.#summary = document.createElement("span");
    this.#summary.className = "ww-summary";
    this.#summary.title = "effective sample size = (Σw)² / Σw²";
    this.#message = document.createElement("span");
    this.#message.className = "ww-message";
    this.#status.append(this.#summary, this.#message);
    this.#root.append(row1, this.#error, row2, this.#status);
    this.#render();
  }

  node(): HTMLElement {
    return this.#root;
  }

  /** The filter box (focused by tests and the keyboard). */
  get input(): HTMLInputElement {
    return this.#input;
  }

  update(next: Partial<ToolbarState>): void {
    const prev = this.#state;
    this.#state = { ...prev, ...next };
    if (next.filter !== undefined && next.filter !== prev.filter) {
      // the kernel accepted a filter: show it unless the user is typing something else
      // (or is looking at the error of the text they typed: the kernel kept the last good one)
      const typing = this.#timer !== undefined || (document.activeElement === this.#input && this.#input.value !== this.#sent);
      const rejected = this.#state.filterError !== null && this.#state.filterError.text === this.#input.value;
      if ((!typing && !rejected) || this.#input.value === next.filter) this.#input.value = next.filter;
    }
    if (next.selectedCount !== undefined || next.selectAll !== undefined) {
      const any = this.#state.selectAll || this.#state.selectedCount > 0;
      const wasAny = prev.selectAll || prev.selectedCount > 0;
      if (any !== wasAny) this.#target.value = any ? "selection" : "matched";
    }
    this.#render();
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }

  #targetValue(): Target {
    return this.#target.value === "selection" ? "selection" : "matched";
  }

  #typed(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), this.#opts.debounceMs ?? 300);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sent = this.#input.value;
    this.#opts.onFilter(this.#input.value);
  }

  #render(): void {
    const s = this.#state;
    const sel = s.selectAll ? s.matched : s.selectedCount;
    const parts = [`${formatCount(s.matched)} of ${formatCount(s.total)} rows match`];
    if (sel > 0) parts.push(`${formatCount(sel)} selected`);
    this.#counts.textContent = parts.join(" · ");
    const selOpt = this.#target.options[0]!;
    selOpt.textContent = `selection (${formatCount(sel)})`;
    selOpt.disabled = sel === 0;
    this.#target.options[1]!.textContent = `all matching (${formatCount(s.matched)})`;
    if (sel === 0) this.#target.value = "matched";
    this.#clearBtn.disabled = sel === 0;
    this.#undo.disabled = !s.canUndo;
    this.#redo.disabled = !s.canRedo;
    this.#root.classList.toggle("ww-is-busy", s.busy);
    this.#busy.style.visibility = s.busy ? "visible" : "hidden";

    const err = s.filterError;
    const showErr = err !== null && err.text === this.#input.value;
    this.#input.classList.toggle("ww-invalid", showErr);
    this.#input.setAttribute("aria-invalid", String(showErr));
    if (showErr) {
      const pos = Math.max(0, Math.min(err.position, err.text.length));
      const msg = document.createElement("span");
      msg.textContent = `${err.message} at position ${err.position}: `;
      const code = document.createElement("code");
      const mark = document.createElement("mark");
      mark.textContent = err.text.slice(pos, pos + 1) || " ";
      code.append(document.createTextNode(err.text.slice(0, pos)), mark, document.createTextNode(err.text.slice(pos + 1)));
      const kept = document.createElement("span");
      kept.className = "ww-kept";
      kept.textContent = s.filter ? ` (still showing: ${s.filter})` : " (still showing all rows)";
      this.#error.replaceChildren(msg, code, kept);
      this.#error.style.display = "";
    } else {
      this.#error.replaceChildren();
      this.#error.style.display = "none";
    }
    // the status band: the summary, then the last message; never an empty strip
    const sum = s.summary;
    this.#summary.replaceChildren(
      ...(sum
        ? ([
            ["rows", sum.rows],
            ["matched", sum.matched],
            ["included", sum.included],
            ["effective sample size", sum.ess],
          ] as const).map(([k, v]) => {
            const item = document.createElement("span");
            item.className = "ww-stat";
            const b = document.createElement("b");
            b.textContent = formatCount(v);
            item.append(document.createTextNode(`${k} `), b);
            return item;
          })
        : []),
    );
    if (sum) {
      const rev = document.createElement("span");
      rev.className = "ww-stat ww-stat-rev";
      rev.textContent = `r${sum.revision}`;
      this.#summary.append(rev);
    }
    this.#message.textContent = s.status?.text ?? "";
    this.#status.classList.toggle("ww-status-error", s.status?.kind === "error");
    this.#status.style.display = sum || s.status ? "" : "none";
  }
}
