// Suggestions panel (issue 12 point 3, issue 13 point 3): one line per kind of row that may
// deserve a change (label issues per run, suggested relabels, hardest by loss, least
// confident, unlabelled rows to label next, excluded rows), each with its count. A click
// shows the line's rows (the kernel wrote the filter text and the sort); a second click
// clears them. Under the shown line, its bulk actions on the shown or the selected rows:
// each is one named revision in the kernel. Counts come from the kernel, refetched after
// every revision.
import { formatCount, parseWeight } from "../format";
import type { Suggestion, SuggestionAction, Target } from "../types";

export interface SuggestionsOptions {
  /** Show a line's rows: set its filter and sort. */
  onShow: (item: Suggestion) => void;
  /** The shown line was clicked again: show every row. */
  onClear: () => void;
  /** A bulk action on the shown line's rows (`value`: the factor of "scale"). */
  onAction: (key: string, action: SuggestionAction, target: Target, value?: number) => void;
  /** A value the user typed cannot be used (e.g. a factor that is not a number). */
  onError?: (message: string) => void;
}

export interface SuggestionsState {
  /** The kernel's lines; null until the first reply. */
  items: Suggestion[] | null;
  filter: string;
  matched: number;
  selectedCount: number;
  selectAll: boolean;
}

/** The factor "Down-weight" starts with. */
export const DEFAULT_FACTOR = "0.5";

const ACTION_TEXT: Record<SuggestionAction, [string, string]> = {
  exclude: ["Exclude", "set weight 0: never sampled (one revision)"],
  scale: ["Down-weight ×", "multiply the weight by the factor (one revision)"],
  relabel: ["Relabel", "set each row's label to the run's suggested label (one revision)"],
  include: ["Include", "set weight 1 (one revision)"],
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class Suggestions {
  #opts: SuggestionsOptions;
  #root: HTMLDivElement;
  #list: HTMLDivElement;
  #hint: HTMLDivElement;
  #bar: HTMLDivElement;
  #target: HTMLSelectElement;
  #factor: HTMLInputElement;
  #buttons = new Map<SuggestionAction, HTMLButtonElement>();
  #barKey: string | null = null;
  #state: SuggestionsState = { items: null, filter: "", matched: 0, selectedCount: 0, selectAll: false };

  constructor(options: SuggestionsOptions) {
    this.#opts = options;
    this.#root = el("div", "ww-suggest");
    const title = el("div", "ww-panel-title", "Suggestions");
    this.#list = el("div", "ww-suggest-list");
    this.#list.setAttribute("role", "list");
    this.#hint = el("div", "ww-suggest-hint");
    this.#root.append(title, this.#list, this.#hint);

    // the action bar: built once (the typed factor survives updates), shown under the
    // line whose rows the table shows
    this.#bar = el("div", "ww-suggest-actions");
    for (const action of ["relabel", "exclude", "scale", "include"] as const) {
      const [text, tip] = ACTION_TEXT[action];
      const b = el("button", `ww-btn ww-suggest-${action}`, text);
      b.type = "button";
      b.title = tip;
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        this.#act(action);
      });
      this.#buttons.set(action, b);
    }
    this.#factor = el("input", "ww-value ww-suggest-factor");
    this.#factor.type = "text";
    this.#factor.value = DEFAULT_FACTOR;
    this.#factor.setAttribute("aria-label", "down-weight factor");
    this.#factor.addEventListener("input", () => this.#factor.classList.remove("ww-invalid"));
    this.#factor.addEventListener("keydown", (e) => {
      e.stopPropagation(); // typing a factor never reaches the table or the host's shortcuts
      if (e.key === "Enter") this.#act("scale");
    });
    this.#target = el("select", "ww-target ww-suggest-target");
    this.#target.setAttribute("aria-label", "rows to change");
    for (const v of ["matched", "selection"]) {
      const o = document.createElement("option");
      o.value = v;
      this.#target.append(o);
    }
    // first what the actions apply to, then the actions ("Down-weight ×" keeps its factor
    // on its line)
    const apply = el("div", "ww-suggest-apply");
    apply.append(el("span", "ww-apply-label", "Apply to"), this.#target);
    const scale = el("span", "ww-suggest-scale-group");
    scale.append(this.#buttons.get("scale")!, this.#factor);
    const buttons = el("div", "ww-suggest-buttons");
    buttons.append(this.#buttons.get("relabel")!, this.#buttons.get("exclude")!, scale, this.#buttons.get("include")!);
    this.#bar.append(apply, buttons);
    this.#render();
  }

  node(): HTMLElement {
    return this.#root;
  }

  /** The line whose rows the table shows (its filter is the current filter), if any. */
  get shown(): Suggestion | undefined {
    const { items, filter } = this.#state;
    return filter === "" ? undefined : items?.find((i) => i.filter === filter);
  }

  update(next: Partial<SuggestionsState>): void {
    const prev = this.#state;
    this.#state = { ...prev, ...next };
    const had = prev.selectAll || prev.selectedCount > 0;
    const has = this.#state.selectAll || this.#state.selectedCount > 0;
    if (had !== has) this.#target.value = has ? "selection" : "matched";
    this.#render();
  }

  #act(action: SuggestionAction): void {
    const item = this.shown;
    if (!item) return;
    const target: Target = this.#target.value === "selection" ? "selection" : "matched";
    if (action !== "scale") return this.#opts.onAction(item.key, action, target);
    const parsed = parseWeight(this.#factor.value);
    if ("error" in parsed) {
      this.#factor.classList.add("ww-invalid");
      this.#factor.title = parsed.error;
      this.#opts.onError?.(`factor: ${parsed.error}`);
      return;
    }
    this.#opts.onAction(item.key, "scale", target, parsed.value);
  }

  #render(): void {
    const { items, matched } = this.#state;
    const shown = this.shown;
    if (items === null) {
      this.#list.replaceChildren();
      this.#hint.textContent = "counting…";
      return;
    }
    const rows = items.map((item) => this.#line(item, item === shown));
    this.#list.replaceChildren(...rows);
    const fromRuns = items.some((i) => i.run !== null);
    this.#hint.textContent = fromRuns ? "" : "Runs of find_label_issues and collect_metrics add lines here.";
    this.#hint.title = fromRuns
      ? ""
      : "ww.find_label_issues(t, pred_probs, run=…) flags label issues and suggests labels; " +
        "ww.collect_metrics(t, probs, run=…) adds loss and confidence (hardest, least confident, label next).";
    this.#hint.style.display = fromRuns ? "none" : "";

    if (shown && shown.actions.length) {
      for (const [action, b] of this.#buttons) b.style.display = shown.actions.includes(action) ? "" : "none";
      this.#factor.style.display = shown.actions.includes("scale") ? "" : "none";
      const sel = this.#state.selectAll ? matched : this.#state.selectedCount;
      const [mOpt, sOpt] = [this.#target.options[0]!, this.#target.options[1]!];
      mOpt.textContent = `shown (${formatCount(matched)})`;
      sOpt.textContent = `selected (${formatCount(sel)})`;
      sOpt.disabled = sel === 0;
      if (sel === 0) this.#target.value = "matched";
      const none = (this.#target.value === "selection" ? sel : matched) === 0;
      for (const b of this.#buttons.values()) b.disabled = none;
      rows[items.indexOf(shown)]!.after(this.#bar);
      this.#barKey = shown.key;
    } else {
      this.#bar.remove();
      this.#barKey = null;
    }
  }

  /** The key of the line showing its actions (null: none). */
  get actionsFor(): string | null {
    return this.#barKey;
  }

  #line(item: Suggestion, active: boolean): HTMLElement {
    const line = el("div", "ww-suggestion" + (active ? " ww-active" : "") + (item.count === 0 ? " ww-none" : ""));
    line.setAttribute("role", "listitem");
    line.dataset.key = item.key;
    line.dataset.kind = item.kind;
    const clickable = active || item.count > 0;
    line.tabIndex = clickable ? 0 : -1;
    line.setAttribute("aria-disabled", String(!clickable));
    const what = `${item.detail}\nfilter: ${item.filter}` + (item.sort_by ? `\nsorted by ${item.sort_by} ${item.ascending ? "ascending" : "descending"}` : "");
    line.title = what + (active ? "\n(click to show every row)" : clickable ? "\n(click to show these rows)" : "");
    const title = el("span", "ww-suggest-title", item.title);
    const run = el("span", "ww-suggest-run", item.run ?? "");
    const count = el("span", "ww-suggest-count", formatCount(item.count));
    line.append(title, run, count);
    const pick = () => {
      if (active) this.#opts.onClear();
      else if (clickable) this.#opts.onShow(item);
    };
    line.addEventListener("click", pick);
    line.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        e.stopPropagation();
        pick();
      }
    });
    return line;
  }
}
