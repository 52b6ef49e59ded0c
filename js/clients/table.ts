// Virtual table: fixed row height, only the visible rows plus a margin are in the DOM
// (a pool of reused row elements), pages of rows fetched on demand and cached by view.
import { assert } from "../assert";
import { formatNumber, parseWeight } from "../format";
import { drawPixels } from "../pixels";
import type { ColumnData, ColumnMeta, Page } from "../types";

export const PAGE_SIZE = 100;
const MAX_PAGES = 40;
/** Browsers cap element heights (~33M px in Chromium); beyond this the scrollbar is scaled. */
const MAX_SCROLL_PX = 8_000_000;

export type SelectEvent =
  | { kind: "click"; row: number; position: number }
  | { kind: "toggle"; row: number; position: number }
  | { kind: "range"; anchor: number; position: number; add: boolean }
  | { kind: "all" };

export type KeyAction = "undo" | "redo" | "set0" | "set1";

/** The editable columns the cursor can be on (Left/Right move between them). */
export type EditColumn = "label" | "weight";

export interface TableOptions {
  fetch: (start: number, count: number) => Promise<Page>;
  onSort: (column: string) => void;
  onEdit: (row: number, value: number) => Promise<void>;
  onSelect: (event: SelectEvent) => void;
  onKey: (action: KeyAction) => void;
  onError: (message: string) => void;
  /**
   * Open the label picker for a row (Enter or a key typed on its label cell, or a double
   * click), under `anchor`; `current` is the row's label as text (null: unlabelled) and
   * `key` the key typed, if any.
   */
  onPickLabel?: (row: number, anchor: HTMLElement, current: string | null, key?: string) => void;
  /** The row under the cursor changed (moved, scrolled into a new page, new view). */
  onCursor?: (row: number | undefined, position: number) => void;
  /** The columns shown horizontally changed (scrolling sideways, new columns). */
  onColumnsShown?: (names: string[]) => void;
  rowHeight?: number;
  height?: number;
  /** Height of the column summaries row under the names (0: none). */
  summaryHeight?: number;
}

export interface TableState {
  columns: ColumnMeta[];
  total: number;
  view: number;
  /** The filter text: a new one (like a new sort or row count) sends the view to the top. */
  filter: string;
  sortBy: string | null;
  sortAscending: boolean;
  selected: ReadonlySet<number>;
  selectAll: boolean;
}

interface CacheEntry {
  page: Page;
  used: number;
}

const WIDTH: Record<string, number> = { row: 84, weight: 96, label: 120, numeric: 104, bool: 64, string: 220, image: 44 };

function columnWidth(c: ColumnMeta): number {
  if (c.role === "row") return WIDTH.row!;
  if (c.role === "weight") return WIDTH.weight!;
  if (c.role === "label" && c.kind !== "string") return WIDTH.label!; // room for "unlabelled", ∅ counts
  return WIDTH[c.kind] ?? 120;
}

export class Table {
  #opts: TableOptions;
  #rowH: number;
  #root: HTMLDivElement;
  #scroll: HTMLDivElement;
  #canvas: HTMLDivElement;
  #head: HTMLDivElement;
  #header: HTMLDivElement;
  #srow: HTMLDivElement;
  #scells = new Map<string, HTMLElement>();
  #shown = "";
  #rowsLayer: HTMLDivElement;
  #empty: HTMLDivElement;
  #pool: HTMLDivElement[] = [];
  #state: TableState = {
    columns: [],
    total: 0,
    view: 0,
    filter: "",
    sortBy: null,
    sortAscending: true,
    selected: new Set(),
    selectAll: false,
  };
  #cache = new Map<number, CacheEntry>();
  #inflight = new Map<number, number>(); // page index -> view it was asked for
  #tick = 0;
  #cursor = 0;
  #anchor = 0;
  #col: EditColumn = "weight";
  #cursorRow: number | undefined = undefined;
  #editing: { row: number; input: HTMLInputElement } | null = null;
  #frame = 0;
  #renderedStart = -1;

  constructor(options: TableOptions) {
    this.#opts = options;
    this.#rowH = options.rowHeight ?? 28;
    this.#root = document.createElement("div");
    this.#root.className = "ww-table";
    this.#root.tabIndex = 0;
    this.#root.setAttribute("role", "grid");
    this.#scroll = document.createElement("div");
    this.#scroll.className = "ww-scroll";
    this.#scroll.style.height = `${options.height ?? 420}px`;
    this.#canvas = document.createElement("div");
    this.#canvas.className = "ww-canvas";
    this.#head = document.createElement("div");
    this.#head.className = "ww-head";
    this.#header = document.createElement("div");
    this.#header.className = "ww-header";
    this.#header.setAttribute("role", "row");
    this.#srow = document.createElement("div");
    this.#srow.className = "ww-srow";
    const sh = options.summaryHeight ?? 0;
    this.#srow.style.height = `${sh}px`;
    this.#srow.style.display = sh > 0 ? "" : "none";
    this.#head.append(this.#header, this.#srow);
    this.#rowsLayer = document.createElement("div");
    this.#rowsLayer.className = "ww-rows";
    this.#empty = document.createElement("div");
    this.#empty.className = "ww-empty";
    this.#empty.textContent = "No rows match the filter.";
    this.#canvas.append(this.#head, this.#rowsLayer);
    this.#scroll.append(this.#canvas, this.#empty);
    this.#root.append(this.#scroll);
    this.#scroll.addEventListener("scroll", () => this.#schedule());
    // summary cells are inside the scroll area: pointer drags there are brushes, not
    // row selections (the rows layer gets its own clicks)
    this.#root.addEventListener("keydown", (e) => this.#onKey(e));
    this.#rowsLayer.addEventListener("click", (e) => this.#onClick(e));
    this.#rowsLayer.addEventListener("dblclick", (e) => this.#onDblClick(e));
  }

  node(): HTMLElement {
    return this.#root;
  }

  /** The summary cell above each column, by name (images and the row id have none). */
  summaryCells(): Map<string, HTMLElement> {
    return this.#scells;
  }

  /** Names of the columns horizontally in view (at least partly). */
  visibleColumns(): string[] {
    const left = this.#scroll.scrollLeft;
    const width = this.#scroll.clientWidth || Number.POSITIVE_INFINITY;
    const out: string[] = [];
    let x = 0;
    for (const c of this.#state.columns) {
      const w = columnWidth(c);
      if (x + w > left && x < left + width) out.push(c.name);
      x += w;
    }
    return out;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** Row id at a view position if its page is loaded (current or stale view). */
  rowAt(position: number): number | undefined {
    const e = this.#cache.get(Math.floor(position / PAGE_SIZE));
    if (!e) return undefined;
    const i = position - e.page.start;
    return i >= 0 && i < e.page.count ? e.page.ids[i] : undefined;
  }

  /**
   * Row ids at view positions a..b (inclusive, either order) when all are loaded in
   * the current view; undefined otherwise (the kernel then resolves the range).
   */
  idsBetween(a: number, b: number): number[] | undefined {
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    if (hi - lo + 1 > MAX_PAGES * PAGE_SIZE) return undefined;
    const out: number[] = [];
    for (let p = Math.floor(lo / PAGE_SIZE); p <= Math.floor(hi / PAGE_SIZE); p++) {
      const e = this.#cache.get(p);
      if (!e || e.page.view < this.#state.view) return undefined;
      const from = Math.max(lo, e.page.start) - e.page.start;
      const to = Math.min(hi, e.page.start + e.page.count - 1) - e.page.start;
      if (to - from + 1 !== Math.min(hi, (p + 1) * PAGE_SIZE - 1) - Math.max(lo, p * PAGE_SIZE) + 1) return undefined;
      for (let i = from; i <= to; i++) out.push(e.page.ids[i]!);
    }
    return out;
  }

  update(next: Partial<TableState>): void {
    const prev = this.#state;
    this.#state = { ...prev, ...next };
    const changed = (k: keyof TableState) => next[k] !== undefined && next[k] !== prev[k];
    if (changed("columns")) this.#buildColumns();
    if (changed("view")) {
      this.#cancelEdit();
      // keep stale pages on screen until fresh ones arrive: no blank flash
    }
    // other rows now: back to the top, so the header, the first rows and the spacer height
    // all belong to the new view (a deep scroll offset must not outlive the rows it was for)
    const reorder = changed("filter") || changed("sortBy") || changed("sortAscending");
    // an edit changed how many rows match (labelling rows of "label is missing" takes them
    // out): the cursor stays at its position, where the next rows slide in
    const resized = changed("total") && !reorder;
    if (this.#cursor >= this.#state.total) this.#cursor = Math.max(0, this.#state.total - 1);
    this.#updateHeader();
    this.#layout();
    if (reorder) this.#toTop();
    else if (resized) this.#keepCursor();
    this.render();
  }

  /** Scroll to the first row of the view (cursor and range anchor too). */
  #toTop(): void {
    this.#cursor = 0;
    this.#anchor = 0;
    // the rows layer is translated to the old offset: reset it first, or its transform keeps
    // the old scroll height alive and the browser cannot clamp the offset
    this.#rowsLayer.style.transform = "translateY(0px)";
    this.#scroll.scrollTop = 0;
  }

  /** After the row count changed in place: a valid offset, the cursor's row in view. */
  #keepCursor(): void {
    this.#anchor = Math.min(this.#anchor, Math.max(0, this.#state.total - 1));
    this.#rowsLayer.style.transform = "translateY(0px)"; // let the browser clamp the offset
    const max = Math.max(0, this.#virtualHeight() + this.#headerHeight() - this.#scroll.clientHeight);
    if (this.#scroll.scrollTop > max) this.#scroll.scrollTop = max;
    if (this.#state.total > 0) this.scrollTo(this.#cursor);
  }

  /** The editable column the cursor is on ("weight" unless moved with Left/Right). */
  get column(): EditColumn {
    return this.#col;
  }

  /** Scroll so that a view position is visible. */
  scrollTo(position: number): void {
    const vh = this.#viewportRows();
    const { first } = this.#window();
    if (position < first) this.#setFirst(position);
    else if (position >= first + vh - 1) this.#setFirst(position - vh + 2);
  }

  dispose(): void {
    cancelAnimationFrame(this.#frame);
  }

  // ------------------------------------------------------------------ layout

  #buildColumns(): void {
    this.#header.replaceChildren();
    const cols = this.#state.columns;
    let width = 0;
    for (const c of cols) {
      const cell = document.createElement("div");
      cell.className = `ww-hcell ww-kind-${c.kind} ww-role-${c.role}`;
      cell.style.width = `${columnWidth(c)}px`;
      cell.setAttribute("role", "columnheader");
      cell.dataset.column = c.name;
      const name = document.createElement("span");
      name.className = "ww-hname";
      name.textContent = c.name;
      const arrow = document.createElement("span");
      arrow.className = "ww-sort";
      cell.append(name, arrow);
      if (c.kind !== "image") {
        cell.classList.add("ww-sortable");
        cell.title = `sort by ${c.name}`;
        cell.addEventListener("click", () => this.#opts.onSort(c.name));
      }
      this.#header.append(cell);
      width += columnWidth(c);
    }
    this.#canvas.style.minWidth = `${width}px`;
    this.#srow.replaceChildren();
    this.#scells = new Map();
    for (const c of cols) {
      const cell = document.createElement("div");
      cell.className = `ww-scell ww-kind-${c.kind} ww-role-${c.role}`;
      cell.style.width = `${columnWidth(c)}px`;
      cell.dataset.column = c.name;
      if (c.kind !== "image" && c.role !== "row") this.#scells.set(c.name, cell);
      this.#srow.append(cell);
    }
    this.#shown = "";
    for (const row of this.#pool) row.remove();
    this.#pool = [];
    this.#renderedStart = -1;
  }

  #updateHeader(): void {
    for (const cell of Array.from(this.#header.children) as HTMLElement[]) {
      const on = cell.dataset.column === this.#state.sortBy;
      const arrow = cell.querySelector(".ww-sort") as HTMLElement;
      arrow.textContent = on ? (this.#state.sortAscending ? "▲" : "▼") : "";
      cell.setAttribute("aria-sort", on ? (this.#state.sortAscending ? "ascending" : "descending") : "none");
    }
  }

  #virtualHeight(): number {
    return Math.min(this.#state.total * this.#rowH, MAX_SCROLL_PX);
  }

  #layout(): void {
    const h = this.#virtualHeight();
    const head = this.#headerHeight();
    this.#canvas.style.height = `${head + h}px`;
    this.#rowsLayer.style.top = `${head}px`;
    this.#empty.style.display = this.#state.total === 0 && this.#state.columns.length ? "" : "none";
  }

  #headerHeight(): number {
    return this.#head.offsetHeight || this.#rowH + (this.#opts.summaryHeight ?? 0);
  }

  #viewportRows(): number {
    const h = this.#scroll.clientHeight || Number.parseFloat(this.#scroll.style.height) || 420;
    return Math.max(1, Math.ceil((h - this.#headerHeight()) / this.#rowH));
  }

  /** First visible row position and the pixel offset inside it, with scroll scaling. */
  #window(): { first: number; offset: number } {
    const total = this.#state.total;
    const full = total * this.#rowH;
    const virt = this.#virtualHeight();
    const vh = this.#viewportRows() * this.#rowH;
    const top = this.#scroll.scrollTop;
    let px = top;
    if (full > virt && virt > vh) px = (top / (virt - vh)) * (full - vh);
    px = Math.max(0, Math.min(px, Math.max(0, full - vh)));
    const first = Math.floor(px / this.#rowH);
    return { first, offset: px - first * this.#rowH };
  }

  #setFirst(position: number): void {
    const full = this.#state.total * this.#rowH;
    const virt = this.#virtualHeight();
    const vh = this.#viewportRows() * this.#rowH;
    let top = Math.max(0, position) * this.#rowH;
    if (full > virt && virt > vh) top = (top / (full - vh)) * (virt - vh);
    this.#scroll.scrollTop = top;
    this.render();
  }

  #schedule(): void {
    if (this.#editing) this.#cancelEdit();
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.render();
    });
  }

  #reportColumns(): void {
    if (!this.#opts.onColumnsShown || !this.#state.columns.length) return;
    const names = this.visibleColumns();
    const key = names.join("\u0000");
    if (key === this.#shown) return;
    this.#shown = key;
    this.#opts.onColumnsShown(names);
  }

  // ------------------------------------------------------------------ render

  /** Place the pooled rows for the current scroll position and fill them from the cache. */
  render(): void {
    const { total, columns } = this.#state;
    if (!columns.length) return;
    this.#reportColumns();
    const vrows = this.#viewportRows();
    const margin = Math.max(10, vrows);
    const { first, offset } = this.#window();
    const start = Math.max(0, first - margin);
    const end = Math.min(total, first + vrows + margin);
    const need = end - start;
    while (this.#pool.length < need) this.#pool.push(this.#makeRow());
    this.#rowsLayer.style.transform = `translateY(${this.#scroll.scrollTop - offset - (first - start) * this.#rowH}px)`;
    this.#renderedStart = start;
    this.#ensurePages(start, end, first);
    for (let i = 0; i < this.#pool.length; i++) {
      const el = this.#pool[i]!;
      const pos = start + i;
      if (pos >= end) {
        el.style.display = "none";
        continue;
      }
      el.style.display = "";
      this.#fillRow(el, pos);
    }
    this.#reportCursor();
  }

  #reportCursor(): void {
    if (!this.#opts.onCursor) return;
    const row = this.#state.total > 0 ? this.rowAt(this.#cursor) : undefined;
    if (row === this.#cursorRow) return;
    this.#cursorRow = row;
    this.#opts.onCursor(row, this.#cursor);
  }

  #makeRow(): HTMLDivElement {
    const row = document.createElement("div");
    row.className = "ww-row";
    row.setAttribute("role", "row");
    row.style.height = `${this.#rowH}px`;
    for (const c of this.#state.columns) {
      const cell = document.createElement("div");
      cell.className = `ww-cell ww-kind-${c.kind} ww-role-${c.role}`;
      cell.style.width = `${columnWidth(c)}px`;
      cell.setAttribute("role", "gridcell");
      if (c.kind === "image") {
        const canvas = document.createElement("canvas");
        canvas.className = "ww-thumb";
        cell.append(canvas);
      }
      row.append(cell);
    }
    this.#rowsLayer.append(row);
    return row;
  }

  #fillRow(el: HTMLDivElement, pos: number): void {
    const entry = this.#cache.get(Math.floor(pos / PAGE_SIZE));
    const i = entry ? pos - entry.page.start : -1;
    const page = entry && i >= 0 && i < entry.page.count ? entry.page : undefined;
    el.dataset.position = String(pos);
    el.classList.toggle("ww-cursor", pos === this.#cursor);
    el.classList.toggle("ww-loading", !page);
    // a page of an older view stays on screen until the fresh one arrives: no blank flash
    el.classList.toggle("ww-stale", !!page && page.view < this.#state.view);
    const cells = el.children;
    if (!page) {
      delete el.dataset.row;
      el.classList.remove("ww-selected");
      for (let c = 0; c < cells.length; c++) {
        const cell = cells[c] as HTMLElement;
        cell.classList.remove("ww-cell-focus", "ww-unlabelled");
        if (this.#state.columns[c]!.kind !== "image") cell.textContent = "";
      }
      return;
    }
    const row = page.ids[i]!;
    el.dataset.row = String(row);
    el.classList.toggle("ww-selected", this.#state.selectAll || this.#state.selected.has(row));
    el.setAttribute("aria-selected", String(this.#state.selectAll || this.#state.selected.has(row)));
    const focus = pos === this.#cursor;
    this.#state.columns.forEach((c, ci) => {
      const cell = cells[ci] as HTMLElement;
      const data = page.columns.get(c.name);
      cell.classList.toggle("ww-cell-focus", focus && c.role === this.#col);
      if (this.#editing && this.#editing.row === row && c.role === "weight") return;
      fillCell(cell, data, i);
      if (c.role === "weight" && data?.kind === "numeric") cell.classList.toggle("ww-zero", data.values[i] === 0);
      if (c.role === "label") {
        const missing = labelText(data, i) === null;
        cell.classList.toggle("ww-unlabelled", missing);
        if (missing) {
          cell.textContent = "unlabelled";
          cell.classList.remove("ww-nan");
        }
      }
    });
  }

  #ensurePages(start: number, end: number, first: number): void {
    const view = this.#state.view;
    for (let p = Math.floor(start / PAGE_SIZE); p * PAGE_SIZE < end; p++) {
      const e = this.#cache.get(p);
      if (e) e.used = ++this.#tick;
      if ((e && e.page.view >= view) || this.#inflight.get(p) === view) continue;
      this.#inflight.set(p, view);
      const count = Math.min(PAGE_SIZE, this.#state.total - p * PAGE_SIZE);
      this.#opts
        .fetch(p * PAGE_SIZE, count)
        .then((page) => {
          if (this.#inflight.get(p) === view) this.#inflight.delete(p);
          if (page.view < this.#state.view) return; // an older view; a newer request is coming
          this.#cache.set(p, { page, used: ++this.#tick });
          this.#evict(first);
          this.render();
        })
        .catch((err: Error) => {
          if (this.#inflight.get(p) === view) this.#inflight.delete(p);
          this.#opts.onError(err.message);
        });
    }
  }

  #evict(first: number): void {
    if (this.#cache.size <= MAX_PAGES) return;
    const here = Math.floor(first / PAGE_SIZE);
    const keys = [...this.#cache.keys()].sort((a, b) => Math.abs(b - here) - Math.abs(a - here));
    for (const k of keys.slice(0, this.#cache.size - MAX_PAGES)) this.#cache.delete(k);
  }

  // ------------------------------------------------------------------ events

  #rowOf(target: EventTarget | null): HTMLElement | null {
    return target instanceof Element ? (target.closest(".ww-row") as HTMLElement | null) : null;
  }

  #onClick(e: MouseEvent): void {
    const el = this.#rowOf(e.target);
    if (!el || el.dataset.row === undefined || (e.target as Element).closest("input")) return;
    const position = Number(el.dataset.position);
    const row = Number(el.dataset.row);
    this.#root.focus({ preventScroll: true });
    const cell = (e.target as Element).closest(".ww-role-label, .ww-role-weight");
    if (cell) this.#col = cell.classList.contains("ww-role-label") && this.#opts.onPickLabel ? "label" : "weight";
    if (e.shiftKey) {
      this.#opts.onSelect({ kind: "range", anchor: this.#anchor, position, add: e.ctrlKey || e.metaKey });
    } else if (e.ctrlKey || e.metaKey) {
      this.#anchor = position;
      this.#opts.onSelect({ kind: "toggle", row, position });
    } else {
      this.#anchor = position;
      this.#opts.onSelect({ kind: "click", row, position });
    }
    this.#cursor = position;
    this.render();
  }

  #onDblClick(e: MouseEvent): void {
    const el = this.#rowOf(e.target);
    if (!el || el.dataset.row === undefined) return;
    const position = Number(el.dataset.position);
    const onLabel = e.target instanceof Element && e.target.closest(".ww-role-label") !== null;
    if (onLabel && this.pickLabel(position)) return;
    this.edit(position);
  }

  /**
   * Ask for the label picker on a view position (if that row is loaded and visible);
   * `key` is a key typed on the label cell, handed to the picker.
   */
  pickLabel(position: number, key?: string): boolean {
    const li = this.#state.columns.findIndex((c) => c.role === "label");
    const el = this.#pool.find((r) => r.dataset.position === String(position) && r.style.display !== "none");
    if (!this.#opts.onPickLabel || li < 0 || !el || el.dataset.row === undefined) return false;
    const entry = this.#cache.get(Math.floor(position / PAGE_SIZE));
    const data = entry?.page.columns.get(this.#state.columns[li]!.name);
    const current = entry ? labelText(data, position - entry.page.start) : null;
    this.#cancelEdit();
    this.#col = "label";
    this.#cursor = position;
    this.render();
    this.#opts.onPickLabel(Number(el.dataset.row), el.children[li] as HTMLElement, current, key);
    return true;
  }

  /** Open the inline weight editor on a view position (if that row is loaded and visible). */
  edit(position: number): boolean {
    const el = this.#pool.find((r) => r.dataset.position === String(position) && r.style.display !== "none");
    const wi = this.#state.columns.findIndex((c) => c.role === "weight");
    if (!el || el.dataset.row === undefined || wi < 0) return false;
    this.#cancelEdit();
    const row = Number(el.dataset.row);
    const cell = el.children[wi] as HTMLElement;
    const input = document.createElement("input");
    input.className = "ww-edit";
    input.type = "text";
    input.value = cell.textContent ?? "";
    input.setAttribute("aria-label", `weight of row ${row}`);
    cell.replaceChildren(input);
    this.#editing = { row, input };
    input.addEventListener("keydown", (ev) => {
      ev.stopPropagation();
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.#commitEdit();
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        this.#cancelEdit();
        this.#root.focus({ preventScroll: true });
      }
    });
    input.addEventListener("input", () => {
      input.classList.remove("ww-invalid");
      input.title = "";
    });
    input.addEventListener("blur", () => {
      // clicking elsewhere cancels, like Esc (a pending commit keeps the editor)
      if (this.#editing?.input === input && !input.disabled) this.#cancelEdit();
    });
    input.focus();
    input.select();
    return true;
  }

  #commitEdit(): void {
    const ed = this.#editing;
    assert(ed, "commit without an open editor");
    const parsed = parseWeight(ed.input.value);
    if ("error" in parsed) {
      ed.input.classList.add("ww-invalid");
      ed.input.title = parsed.error;
      ed.input.setAttribute("aria-invalid", "true");
      return;
    }
    ed.input.disabled = true;
    this.#opts.onEdit(ed.row, parsed.value).then(
      () => {
        if (this.#editing === ed) {
          this.#editing = null;
          this.#root.focus({ preventScroll: true });
          this.render();
        }
      },
      (err: Error) => {
        ed.input.disabled = false;
        ed.input.classList.add("ww-invalid");
        ed.input.title = err.message;
        ed.input.focus();
      },
    );
  }

  #cancelEdit(): void {
    if (!this.#editing) return;
    this.#editing = null;
    this.render();
  }

  #onKey(e: KeyboardEvent): void {
    if (e.target !== this.#root) return;
    const mod = e.ctrlKey || e.metaKey;
    const total = this.#state.total;
    const move = (to: number) => {
      this.#cursor = Math.max(0, Math.min(total - 1, to));
      if (e.shiftKey) {
        this.#opts.onSelect({ kind: "range", anchor: this.#anchor, position: this.#cursor, add: false });
      } else {
        this.#anchor = this.#cursor;
      }
      this.scrollTo(this.#cursor);
      this.render();
    };
    let handled = true;
    if (mod && e.key.toLowerCase() === "z") this.#opts.onKey(e.shiftKey ? "redo" : "undo");
    else if (mod && e.key.toLowerCase() === "y") this.#opts.onKey("redo");
    else if (mod && e.key.toLowerCase() === "a") this.#opts.onSelect({ kind: "all" });
    else if (mod) handled = false;
    else if (e.key === "ArrowDown") move(this.#cursor + 1);
    else if (e.key === "ArrowUp") move(this.#cursor - 1);
    else if (e.key === "PageDown") move(this.#cursor + this.#viewportRows() - 1);
    else if (e.key === "PageUp") move(this.#cursor - this.#viewportRows() + 1);
    else if (e.key === "Home") move(0);
    else if (e.key === "End") move(total - 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
      const hasLabel = this.#state.columns.some((c) => c.role === "label");
      this.#col = e.key === "ArrowLeft" && hasLabel && this.#opts.onPickLabel ? "label" : "weight";
      this.render();
    } else if (this.#col === "label" && e.key === "Enter" && !e.shiftKey) this.pickLabel(this.#cursor);
    else if (this.#col === "label" && (e.key === "Delete" || (e.key.length === 1 && e.key !== " "))) {
      // typing on the label cell opens the picker with that key (a digit picks at once)
      this.pickLabel(this.#cursor, e.key);
    } else if (e.key === " ") {
      const row = this.rowAt(this.#cursor);
      if (row !== undefined) this.#opts.onSelect({ kind: "toggle", row, position: this.#cursor });
    } else if (e.key === "0") this.#opts.onKey("set0");
    else if (e.key === "1") this.#opts.onKey("set1");
    else if (e.key === "Enter" && !e.shiftKey) this.edit(this.#cursor);
    else handled = false;
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
    }
  }
}

/** A label cell's value as text, or null when the row is unlabelled (NaN, missing text). */
export function labelText(data: ColumnData | undefined, i: number): string | null {
  if (!data) return null;
  if (data.kind === "numeric") {
    const v = data.values[i]!;
    return Number.isNaN(v) ? null : formatNumber(v);
  }
  if (data.kind === "bool") return data.values[i] ? "true" : "false";
  if (data.kind === "string") return data.values[i] ?? null;
  return null;
}

/** Write one value into a cell, as text (never HTML) or pixels. */
export function fillCell(cell: HTMLElement, data: ColumnData | undefined, i: number): void {
  if (!data) {
    cell.textContent = "";
    return;
  }
  switch (data.kind) {
    case "numeric": {
      const v = data.values[i]!;
      cell.textContent = formatNumber(v);
      cell.classList.toggle("ww-nan", Number.isNaN(v));
      return;
    }
    case "bool":
      cell.textContent = data.values[i] ? "true" : "false";
      return;
    case "string": {
      const v = data.values[i];
      cell.textContent = v ?? "";
      cell.title = v ?? "";
      return;
    }
    case "image": {
      const canvas = cell.querySelector("canvas") ?? cell.appendChild(document.createElement("canvas"));
      drawThumb(canvas, data, i);
      return;
    }
  }
}

/** Draw a uint8 thumbnail (grayscale or RGB) on a canvas via ImageData: pixels only. */
export const drawThumb = drawPixels;
