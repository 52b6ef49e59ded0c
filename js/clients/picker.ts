// Label picker (issue 13): choose a row's class from the known classes, keyboard first.
// Opened on a label cell (Enter, double-click, or typing) and by the toolbar's bulk
// "Label…". Typed text only narrows the list; the value is always an entry of it: a
// class, "unlabelled", or, only through the explicit "+ add class" entry, a new class
// (the kernel's set_labels(allow_new_classes=True)). Text goes in with textContent.
import { formatCount } from "../format";

/** One known class as the page lists it (the `value` and `count` of a ClassInfo). */
export interface PickerClass {
  value: string;
  count: number;
}

/** What the user chose. */
export type LabelChoice = { kind: "class"; value: string } | { kind: "missing" } | { kind: "new"; value: string };

export interface PickerRequest {
  /** The element the picker opens under (a label cell, a toolbar button). */
  anchor: HTMLElement;
  classes: readonly PickerClass[];
  /** The current label as text; null when unlabelled; undefined when unknown or mixed. */
  current?: string | null;
  /** What is being labelled, e.g. "label of row 17". */
  title: string;
  /** The label column holds numbers: only numbers are offered as new classes. */
  numeric?: boolean;
  /** A key typed on the label cell that opened the picker: handled as if typed here. */
  initialKey?: string;
  onChoose: (choice: LabelChoice) => void;
  /** Called when the picker closes without a choice (Esc, click elsewhere, scroll). */
  onCancel?: () => void;
}

/**
 * How digit keys pick: "value" when every class is a single digit (the digits dataset:
 * 7 picks class 7), "index" when there are at most ten classes and none starts with a
 * digit or sign (0 picks the first), "none" otherwise (digits are typed to narrow).
 */
export type DigitMode = "value" | "index" | "none";

export function digitMode(values: readonly string[]): DigitMode {
  if (values.length > 0 && values.every((v) => /^[0-9]$/.test(v))) return "value";
  if (values.length > 0 && values.length <= 10 && !values.some((v) => /^[-+.0-9]/.test(v))) return "index";
  return "none";
}

/** Indices of the values a typed query keeps: prefix matches first, then the others containing it (case-insensitive), each in list order. */
export function narrow(values: readonly string[], query: string): number[] {
  const q = query.trim().toLowerCase();
  if (!q) return values.map((_, i) => i);
  const prefix: number[] = [];
  const inside: number[] = [];
  values.forEach((v, i) => {
    const low = v.toLowerCase();
    if (low.startsWith(q)) prefix.push(i);
    else if (low.includes(q)) inside.push(i);
  });
  return [...prefix, ...inside];
}

/** The name of a new class typed as `query` ("+12" or "12" -> "12"), or "" for none. */
export function newClass(query: string): string {
  const q = query.trim();
  return (q.startsWith("+") ? q.slice(1) : q).trim();
}

/** Whether two label texts name the same class ("3" and "3.0"; "true" and "True"). */
export function sameLabel(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.toLowerCase() === b.toLowerCase() && /^(true|false)$/i.test(a)) return true;
  const x = Number(a);
  const y = Number(b);
  return a.trim() !== "" && b.trim() !== "" && Number.isFinite(x) && x === y;
}

/** Entries listed at most (type to narrow the rest). */
export const MAX_SHOWN = 100;
/** At most this many classes are laid out as a grid of keys (GRID_COLUMNS a row). */
export const GRID_MAX = 10;
export const GRID_COLUMNS = 5;
const MISSING_WORDS = ["unlabelled", "missing", "none"];

type Item =
  | { kind: "class"; value: string; count: number; key: string }
  | { kind: "missing"; key: string }
  | { kind: "new"; value: string };

let nextId = 0;

export class LabelPicker {
  #root: HTMLDivElement;
  #title: HTMLDivElement;
  #search: HTMLInputElement;
  #list: HTMLDivElement;
  #hint: HTMLDivElement;
  #id = `ww-picker-${++nextId}`;
  #req: PickerRequest | null = null;
  #mode: DigitMode = "none";
  #items: Item[] = [];
  #active = -1;
  #returnFocus: HTMLElement | null = null;
  // a scroll between the anchor and the widget root (the table's rows) moves the anchor
  // away from the picker: close. Scrolling the page moves both together: stay open.
  #onScroll = (e: Event) => {
    const t = e.target;
    const parent = this.#root.parentElement;
    const anchor = this.#req?.anchor;
    if (anchor && parent && t instanceof Node && t !== parent && parent.contains(t) && t.contains(anchor)) this.close();
  };

  constructor() {
    this.#root = document.createElement("div");
    this.#root.className = "ww-picker";
    this.#root.setAttribute("role", "dialog");
    this.#root.style.display = "none";
    this.#title = document.createElement("div");
    this.#title.className = "ww-picker-title";
    this.#search = document.createElement("input");
    this.#search.type = "text";
    this.#search.className = "ww-picker-search";
    this.#search.placeholder = "type to narrow…";
    this.#search.spellcheck = false;
    this.#search.autocomplete = "off";
    this.#search.setAttribute("role", "combobox");
    this.#search.setAttribute("aria-expanded", "true");
    this.#search.setAttribute("aria-controls", `${this.#id}-list`);
    this.#search.setAttribute("aria-label", "type to narrow the classes");
    this.#list = document.createElement("div");
    this.#list.className = "ww-picker-list";
    this.#list.id = `${this.#id}-list`;
    this.#list.setAttribute("role", "listbox");
    this.#hint = document.createElement("div");
    this.#hint.className = "ww-picker-hint";
    this.#root.append(this.#title, this.#search, this.#list, this.#hint);

    this.#search.addEventListener("keydown", (e) => this.#onKey(e));
    this.#search.addEventListener("input", () => this.#filter());
    // a pointer press on an entry must not blur the search box (that would cancel)
    this.#list.addEventListener("mousedown", (e) => e.preventDefault());
    this.#list.addEventListener("click", (e) => {
      const el = e.target instanceof Element ? (e.target.closest(".ww-pick") as HTMLElement | null) : null;
      if (el) this.#choose(Number(el.dataset.index));
    });
    this.#root.addEventListener("focusout", (e) => {
      const to = e.relatedTarget;
      if (this.#req && !(to instanceof Node && this.#root.contains(to))) this.close();
    });
  }

  node(): HTMLElement {
    return this.#root;
  }

  get isOpen(): boolean {
    return this.#req !== null;
  }

  /** The entries shown, as text (for tests and screen readers). */
  get entries(): string[] {
    return Array.from(this.#list.querySelectorAll(".ww-pick-name"), (e) => e.textContent ?? "");
  }

  /** Open under `req.anchor`, focused on the search box; replaces an open request. */
  open(req: PickerRequest): void {
    if (this.#req) this.close();
    this.#req = req;
    const active = document.activeElement;
    this.#returnFocus = active instanceof HTMLElement && !this.#root.contains(active) ? active : null;
    this.#mode = digitMode(req.classes.map((c) => c.value));
    // few classes (digits): a compact grid of keys, so the picker stays small
    this.#root.classList.toggle("ww-picker-grid", req.classes.length > 0 && req.classes.length <= GRID_MAX);
    this.#root.classList.toggle("ww-picker-by-value", this.#mode === "value");
    this.#title.textContent = req.title;
    this.#root.setAttribute("aria-label", `choose the ${req.title}`);
    this.#search.value = "";
    this.#showHint();
    this.#root.style.display = "";
    this.#filter();
    this.#place(req.anchor);
    document.addEventListener("scroll", this.#onScroll, true);
    this.#search.focus({ preventScroll: true });
    const key = req.initialKey;
    if (key !== undefined && !this.#pickKey(key) && key.length === 1) {
      this.#search.value = key;
      this.#filter();
    }
  }

  /** The keys, on two short lines (or a message in their place). */
  #showHint(message?: string): void {
    const lines = message
      ? [message]
      : [
          [this.#mode === "none" ? "type to narrow" : "0–9 pick", "arrows move", "Enter choose"],
          ["Esc cancel", "Del unlabelled", "+ new class"],
        ].map((parts) => parts.join(" · "));
    this.#hint.replaceChildren(
      ...lines.map((text) => {
        const line = document.createElement("div");
        line.textContent = text;
        return line;
      }),
    );
  }

  /** Close without a choice. */
  close(): void {
    const req = this.#finish();
    req?.onCancel?.();
  }

  dispose(): void {
    this.#finish();
  }

  #finish(): PickerRequest | null {
    const req = this.#req;
    if (!req) return null;
    this.#req = null;
    document.removeEventListener("scroll", this.#onScroll, true);
    this.#root.style.display = "none";
    this.#list.replaceChildren();
    const back = this.#returnFocus;
    this.#returnFocus = null;
    if (back?.isConnected) back.focus({ preventScroll: true });
    return req;
  }

  #choose(index: number): void {
    const item = this.#items[index];
    const req = this.#req;
    if (!item || !req) return;
    this.#finish();
    if (item.kind === "missing") req.onChoose({ kind: "missing" });
    else if (item.kind === "new") req.onChoose({ kind: "new", value: item.value });
    else req.onChoose({ kind: "class", value: item.value });
  }

  /** A digit (or Delete) that picks at once; false when the key is typed instead. */
  #pickKey(key: string): boolean {
    const req = this.#req;
    if (!req) return false;
    if (key === "Delete") {
      this.#chooseItem({ kind: "missing", key: "Del" });
      return true;
    }
    if (!/^[0-9]$/.test(key) || this.#mode === "none") return false;
    const classes = req.classes;
    const hit = this.#mode === "value" ? classes.find((c) => c.value === key) : classes[Number(key)];
    if (!hit) return this.#mode === "index"; // index mode: a digit past the list does nothing
    this.#chooseItem({ kind: "class", value: hit.value, count: hit.count, key });
    return true;
  }

  #chooseItem(item: Item): void {
    this.#items = [item];
    this.#choose(0);
  }

  #filter(): void {
    const req = this.#req;
    if (!req) return;
    this.#showHint();
    const query = this.#search.value;
    const q = query.trim();
    const values = req.classes.map((c) => c.value);
    const keep = narrow(values, q);
    const items: Item[] = keep.slice(0, MAX_SHOWN).map((i) => {
      const c = req.classes[i]!;
      const key = this.#mode === "value" ? c.value : this.#mode === "index" && i < 10 ? String(i) : "";
      return { kind: "class", value: c.value, count: c.count, key };
    });
    const low = q.toLowerCase();
    const missing = !low || MISSING_WORDS.some((w) => w.startsWith(low));
    if (missing) items.push({ kind: "missing", key: "Del" });
    // offered when nothing matches, or asked for with a leading "+" (which also lets
    // digits be typed when they would pick); never for a class the table has
    const fresh = newClass(q);
    const wanted = q.startsWith("+") || (keep.length === 0 && !missing);
    const number = !req.numeric || (/^[-+]?[0-9.]/.test(fresh) && Number.isFinite(Number(fresh)));
    if (fresh && wanted && number && !values.some((v) => sameLabel(v, fresh))) items.push({ kind: "new", value: fresh });
    this.#items = items;
    // the current label is active when shown; otherwise the first match (never "+ add")
    const current = req.current;
    let active = items.findIndex((it) =>
      current === null ? it.kind === "missing" : current !== undefined && it.kind === "class" && sameLabel(it.value, current),
    );
    if (active < 0 || q) active = items.findIndex((it) => it.kind !== "new");
    this.#render(keep.length - Math.min(keep.length, MAX_SHOWN));
    this.#setActive(active);
  }

  #render(hidden: number): void {
    const req = this.#req!;
    const rows = this.#items.map((it, i) => {
      const row = document.createElement("div");
      row.className = `ww-pick ww-pick-${it.kind}`;
      row.id = `${this.#id}-${i}`;
      row.dataset.index = String(i);
      row.setAttribute("role", "option");
      const key = document.createElement("span");
      key.className = "ww-pick-key";
      const name = document.createElement("span");
      name.className = "ww-pick-name";
      const count = document.createElement("span");
      count.className = "ww-pick-count";
      if (it.kind === "class") {
        key.textContent = it.key;
        name.textContent = it.value;
        count.textContent = formatCount(it.count);
        row.dataset.value = it.value;
        if (req.current != null && sameLabel(it.value, req.current)) row.classList.add("ww-pick-current");
      } else if (it.kind === "missing") {
        key.textContent = it.key;
        name.textContent = "unlabelled";
        count.textContent = "";
        if (req.current === null) row.classList.add("ww-pick-current");
      } else {
        key.textContent = "+";
        name.textContent = `add class “${it.value}”`;
        row.title = "a class this table does not have yet";
      }
      row.append(key, name, count);
      return row;
    });
    if (hidden > 0) {
      const more = document.createElement("div");
      more.className = "ww-pick-more";
      more.textContent = `${formatCount(hidden)} more: type to narrow`;
      rows.push(more);
    }
    if (!this.#items.some((it) => it.kind === "class")) {
      const none = document.createElement("div");
      none.className = "ww-pick-more";
      none.textContent = this.#search.value.trim() ? "no class matches" : "no classes yet";
      rows.unshift(none);
    }
    this.#list.replaceChildren(...rows);
  }

  #setActive(i: number): void {
    this.#active = i;
    const rows = this.#list.querySelectorAll<HTMLElement>(".ww-pick");
    rows.forEach((r, j) => {
      r.classList.toggle("ww-pick-active", j === i);
      r.setAttribute("aria-selected", String(j === i));
    });
    const el = rows[i];
    if (el) {
      this.#search.setAttribute("aria-activedescendant", el.id);
      // keep the active entry in the list's view (scrollIntoView would scroll the page too)
      const list = this.#list;
      const top = el.offsetTop;
      const bottom = top + el.offsetHeight;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
    } else {
      this.#search.removeAttribute("aria-activedescendant");
    }
  }

  #onKey(e: KeyboardEvent): void {
    // keys stay in the picker: not the table's, not the notebook's shortcuts
    e.stopPropagation();
    const n = this.#items.length;
    const empty = this.#search.value === "";
    const grid = this.#root.classList.contains("ww-picker-grid");
    let handled = true;
    if (e.key === "ArrowDown") this.#setActive(grid ? this.#gridMove(1) : Math.min(n - 1, this.#active + 1));
    else if (e.key === "ArrowUp") this.#setActive(grid ? this.#gridMove(-1) : Math.max(0, this.#active - 1));
    else if (grid && empty && e.key === "ArrowRight") this.#setActive(Math.min(n - 1, this.#active + 1));
    else if (grid && empty && e.key === "ArrowLeft") this.#setActive(Math.max(0, this.#active - 1));
    else if (e.key === "Home" && empty) this.#setActive(0);
    else if (e.key === "End" && empty) this.#setActive(n - 1);
    else if (e.key === "PageDown") this.#setActive(Math.min(n - 1, this.#active + 8));
    else if (e.key === "PageUp") this.#setActive(Math.max(0, this.#active - 8));
    else if (e.key === "Enter") {
      if (this.#active >= 0) this.#choose(this.#active);
      else this.#showHint("no class matches: ↓ to “+ add class”, or Esc");
    } else if (e.key === "Escape") this.close();
    else if (e.key === "Tab") {
      /* focus stays in the picker */
    } else if (e.key === "Delete" && empty) this.#pickKey("Delete");
    else if (!e.ctrlKey && !e.metaKey && !e.altKey && empty && this.#pickKey(e.key)) {
      /* a digit picked a class */
    } else handled = false;
    if (handled) e.preventDefault();
  }

  /** Up (-1) or down (+1) one row of the grid: classes in rows, then the other entries. */
  #gridMove(dir: 1 | -1): number {
    const k = this.#items.filter((it) => it.kind === "class").length; // classes come first
    const n = this.#items.length;
    const a = this.#active;
    if (a < 0) return dir > 0 ? 0 : -1;
    if (dir > 0) {
      if (a < k) return a + GRID_COLUMNS < k ? a + GRID_COLUMNS : k < n ? k : a;
      return Math.min(n - 1, a + 1);
    }
    if (a >= k) return a - 1 >= k ? a - 1 : k > 0 ? Math.floor((k - 1) / GRID_COLUMNS) * GRID_COLUMNS : a;
    return a - GRID_COLUMNS >= 0 ? a - GRID_COLUMNS : a;
  }

  #place(anchor: HTMLElement): void {
    const parent = this.#root.parentElement;
    if (!parent) return;
    const a = anchor.getBoundingClientRect();
    const p = parent.getBoundingClientRect();
    const h = this.#root.offsetHeight;
    // stay inside the widget: a notebook's output area scrolls (or clips) what sticks out
    const below = a.bottom + h <= p.bottom || a.top - h < p.top;
    const top = below ? a.bottom - p.top : a.top - p.top - h;
    const maxLeft = Math.max(0, p.width - this.#root.offsetWidth);
    this.#root.style.top = `${Math.round(top)}px`;
    this.#root.style.left = `${Math.round(Math.min(Math.max(0, a.left - p.left), maxLeft))}px`;
  }
}
