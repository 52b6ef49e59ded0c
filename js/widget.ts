// Entry point: wires the anywidget model (synced traits + custom messages via rpc.ts)
// to the four clients. Python is the source of truth; the page sends requests and
// sets the traits a user changes (filter, sort, selection).
import "./style.css";
import { Histogram } from "./clients/histogram";
import { History } from "./clients/history";
import { Suggestions } from "./clients/suggestions";
import { Summaries } from "./clients/summaries";
import { type KeyAction, type SelectEvent, Table } from "./clients/table";
import { Toolbar } from "./clients/toolbar";
import { Rpc } from "./rpc";
import type { BulkAction, Model, OkReply, PageTrait, Request, SuggestionsReply, SummariesReply, Target, Traits } from "./types";

/** How often an open widget asks the kernel for revisions committed elsewhere. */
export const PING_MS = 2000;
/** Height of the column summaries (histograms, top values) under the column names. */
export const SUMMARY_HEIGHT = 62;

export function mount(model: Model, el: HTMLElement): () => void {
  const root = document.createElement("div");
  root.className = "ww-root";
  const listeners: [string, () => void][] = [];
  const on = (event: string, cb: () => void) => {
    model.on(event, cb);
    listeners.push([event, cb]);
  };
  const status = (text: string, kind: "error" | "info" = "info") => toolbar.update({ status: { text, kind } });
  // the page sets only the traits it owns (PAGE_TRAITS, from the contract)
  const save = (patch: Partial<Pick<Traits, PageTrait>>) => {
    for (const [k, v] of Object.entries(patch)) model.set(k as PageTrait, v as never);
    model.save_changes();
  };
  const rpc = new Rpc(model, { onBusy: (busy) => toolbar.update({ busy }) });
  const call = async (req: Request): Promise<OkReply | undefined> => {
    try {
      const r = await rpc.call(req);
      if (r.message) status(r.message);
      return r;
    } catch (e) {
      status((e as Error).message, "error");
      return undefined;
    }
  };
  const selection = () => new Set(model.get("selected"));
  const bulk = (action: BulkAction, target: Target, value?: number) =>
    void call(value === undefined ? { kind: "bulk", action, target } : { kind: "bulk", action, target, value });

  // column summaries: asked for after a page of rows arrives (never before the first
  // rows), for the columns on screen, and dropped when they belong to an older view
  const summaries = new Summaries({
    onBrush: (column, lo, hi) => void call({ kind: "brush", column, lo, hi }),
    onPick: (column, value) => void call({ kind: "brush", column, value }),
    onClear: (column) => void call({ kind: "brush", column, clear: true }),
  });
  let summariesView = -1;
  let summaryTimer: ReturnType<typeof setTimeout> | undefined;
  const fetchSummaries = () => {
    const view = model.get("view");
    const cells = table.summaryCells();
    const want = table.visibleColumns().filter((n) => cells.has(n));
    const have = view === summariesView ? new Set(summaries.drawn) : new Set<string>();
    const columns = want.filter((n) => !have.has(n));
    if (!columns.length) return;
    rpc.request({ kind: "summaries", columns }, { quiet: true }).then(
      ({ content }) => {
        const r = content as SummariesReply;
        if (r.view !== model.get("view")) return; // an older view: a newer request follows
        if (r.view !== summariesView) {
          summaries.invalidate();
          summariesView = r.view;
        }
        summaries.update(r.summaries);
      },
      (e: Error) => status(e.message, "error"),
    );
  };
  const scheduleSummaries = () => {
    clearTimeout(summaryTimer);
    summaryTimer = setTimeout(fetchSummaries, 0);
  };

  // suggestions panel: its counts are asked for once the first rows are shown, then after
  // every revision (edits here, in Python, or by another process found by the ping)
  const suggestions = new Suggestions({
    onShow: (item) => save({ filter: item.filter, sort_by: item.sort_by, sort_ascending: item.ascending }),
    onClear: () => save({ filter: "", sort_by: null, sort_ascending: true }),
    onAction: (key, action, target, value) =>
      void call(value === undefined ? { kind: "suggestion_action", key, action, target } : { kind: "suggestion_action", key, action, target, value }),
    onError: (message) => status(message, "error"),
  });
  let suggestionsStarted = false;
  let suggestionsAsked = 0;
  let suggestionsTimer: ReturnType<typeof setTimeout> | undefined;
  const fetchSuggestions = () => {
    const asked = ++suggestionsAsked;
    rpc.request({ kind: "suggestions" }, { quiet: true }).then(
      ({ content }) => {
        if (asked !== suggestionsAsked) return; // a newer request is on its way
        suggestions.update({ items: (content as SuggestionsReply).items });
      },
      (e: Error) => status(e.message, "error"),
    );
  };
  const scheduleSuggestions = () => {
    suggestionsStarted = true;
    clearTimeout(suggestionsTimer);
    suggestionsTimer = setTimeout(fetchSuggestions, 0);
  };

  const table = new Table({
    summaryHeight: SUMMARY_HEIGHT,
    onColumnsShown: scheduleSummaries,
    fetch: (start, count) =>
      rpc.rows(start, count).then((page) => {
        scheduleSummaries();
        if (!suggestionsStarted) scheduleSuggestions();
        return page;
      }),
    onSort: (column) => {
      const by = model.get("sort_by");
      const asc = model.get("sort_ascending");
      if (by !== column) save({ sort_by: column, sort_ascending: true });
      else if (asc) save({ sort_ascending: false });
      else save({ sort_by: null, sort_ascending: true });
    },
    onEdit: async (row, value) => {
      const r = await rpc.call({ kind: "edit", row, value });
      if (r.message) status(r.message);
    },
    onSelect: (e: SelectEvent) => {
      if (e.kind === "all") return save({ select_all: true, selected: [] });
      if (e.kind === "range") {
        // rows on screen are known here: select them at once (no round trip, so a quick
        // ctrl-click after a shift-click cannot race the reply); far ranges ask the kernel
        const ids = table.idsBetween(e.anchor, e.position);
        if (ids === undefined) return void call({ kind: "select_range", start: e.anchor, stop: e.position, add: e.add });
        const base = e.add && !model.get("select_all") ? model.get("selected") : [];
        return save({ select_all: false, selected: [...new Set([...base, ...ids])].sort((x, y) => x - y) });
      }
      if (e.kind === "click") {
        const sel = model.get("selected");
        const only = !model.get("select_all") && sel.length === 1 && sel[0] === e.row;
        return save({ select_all: false, selected: only ? [] : [e.row] });
      }
      const s = model.get("select_all") ? new Set<number>() : selection();
      if (s.has(e.row)) s.delete(e.row);
      else s.add(e.row);
      save({ select_all: false, selected: [...s] });
    },
    onKey: (action: KeyAction) => {
      if (action === "undo" || action === "redo") return void call({ kind: action });
      const hasSel = model.get("select_all") || model.get("selected").length > 0;
      if (hasSel) return bulk(action === "set0" ? "exclude" : "include", "selection");
      const row = table.rowAt(table.cursor);
      if (row !== undefined) void call({ kind: "edit", row, value: action === "set0" ? 0 : 1 });
    },
    onError: (message) => status(message, "error"),
  });
  const toolbar = new Toolbar({
    onFilter: (text) => save({ filter: text }),
    onBulk: bulk,
    onSelectAll: () => save({ select_all: true, selected: [] }),
    onClearSelection: () => save({ select_all: false, selected: [] }),
    onUndo: () => void call({ kind: "undo" }),
    onRedo: () => void call({ kind: "redo" }),
  });
  const histogram = new Histogram({ onFilter: (filter) => save({ filter }) });
  const history = new History({ onRevert: (revision) => void call({ kind: "revert", revision }) });

  const side = document.createElement("div");
  side.className = "ww-side";
  side.append(suggestions.node(), histogram.node(), history.node());
  const main = document.createElement("div");
  main.className = "ww-main";
  main.append(table.node(), side);
  root.append(toolbar.node(), main);
  el.append(root);

  let columns = model.get("columns");
  const sync = () => {
    const selected = model.get("selected");
    const cols = model.get("columns");
    table.update({
      columns: cols,
      total: model.get("matched"),
      view: model.get("view"),
      filter: model.get("filter"),
      sortBy: model.get("sort_by"),
      sortAscending: model.get("sort_ascending"),
      selected: new Set(selected),
      selectAll: model.get("select_all"),
    });
    if (cols !== columns || !summaries.drawn.length) {
      columns = cols;
      summaries.attach(table.summaryCells());
    }
    toolbar.update({
      filter: model.get("filter"),
      filterError: model.get("filter_error"),
      matched: model.get("matched"),
      total: model.get("n_rows"),
      selectedCount: selected.length,
      selectAll: model.get("select_all"),
      canUndo: model.get("can_undo"),
      canRedo: model.get("can_redo"),
      summary: {
        rows: model.get("n_rows"),
        matched: model.get("matched"),
        included: model.get("summary").included,
        ess: model.get("summary").ess,
        revision: model.get("revision"),
      },
    });
  };
  const syncSide = () => {
    histogram.update({
      classes: model.get("classes"),
      filter: model.get("filter"),
      label: model.get("label"),
    });
    history.update({ history: model.get("history"), revision: model.get("revision"), runs: model.get("runs") });
  };
  const syncSuggestions = () => {
    const selected = model.get("selected");
    suggestions.update({
      filter: model.get("filter"),
      matched: model.get("matched"),
      selectedCount: selected.length,
      selectAll: model.get("select_all"),
    });
  };
  for (const t of ["columns", "matched", "view", "sort_by", "sort_ascending", "selected", "select_all", "filter", "filter_error", "n_rows", "can_undo", "can_redo", "summary", "revision"]) {
    on(`change:${t}`, sync);
  }
  for (const t of ["classes", "filter", "label", "history", "revision", "runs"]) on(`change:${t}`, syncSide);
  for (const t of ["filter", "matched", "selected", "select_all"]) on(`change:${t}`, syncSuggestions);
  on("change:revision", () => {
    if (suggestionsStarted) scheduleSuggestions();
  });
  on("change:error", () => {
    const e = model.get("error");
    if (e) status(e, "error");
  });
  sync();
  syncSide();
  syncSuggestions();
  // first paint: clientHeight is known only once attached; render again next frame
  requestAnimationFrame(() => table.render());

  // revisions committed by Python code or another process show up without a re-run
  let pinging = false;
  const ping = setInterval(() => {
    if (pinging || !el.isConnected || document.visibilityState === "hidden") return;
    pinging = true;
    rpc.request({ kind: "ping" }, { quiet: true }).then(
      () => (pinging = false),
      () => (pinging = false),
    );
  }, PING_MS);

  return () => {
    clearInterval(ping);
    clearTimeout(summaryTimer);
    clearTimeout(suggestionsTimer);
    for (const [event, cb] of listeners) model.off(event, cb);
    rpc.dispose();
    table.dispose();
    toolbar.dispose();
    root.remove();
  };
}

export default {
  initialize() {
    return () => {};
  },
  render({ model, el }: { model: Model; el: HTMLElement }) {
    return mount(model, el);
  },
};
