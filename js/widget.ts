// Entry point: wires the anywidget model (synced traits + custom messages via rpc.ts)
// to the four clients. Python is the source of truth; the page sends requests and
// sets the traits a user changes (filter, sort, selection).
import "./style.css";
import { Histogram } from "./clients/histogram";
import { History } from "./clients/history";
import { type LabelChoice, LabelPicker } from "./clients/picker";
import { Preview } from "./clients/preview";
import { Summaries } from "./clients/summaries";
import { type KeyAction, type SelectEvent, Table } from "./clients/table";
import { Toolbar } from "./clients/toolbar";
import { Rpc } from "./rpc";
import type { BulkAction, Model, OkReply, PageTrait, Request, SummariesReply, Target, Traits } from "./types";

/** How often an open widget asks the kernel for revisions committed elsewhere. */
export const PING_MS = 2000;
/** Height of the column summaries (histograms, top values) under the column names. */
export const SUMMARY_HEIGHT = 62;
/** Height of the table (px); taller with images, so the focused row's preview fits beside. */
export const TABLE_HEIGHT = 420;
export const IMAGE_TABLE_HEIGHT = 560;

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

  // label editing (issue 13): one picker for a label cell and for the toolbar's bulk
  // "Label…"; the label travels as the class's text, null for unlabelled
  const picker = new LabelPicker();
  const classes = () => model.get("classes").map((c) => ({ value: c.value, count: c.count }));
  const numeric = () => model.get("columns").some((c) => c.role === "label" && c.kind === "numeric");
  const labelBody = (c: LabelChoice) =>
    c.kind === "missing" ? { value: null } : c.kind === "new" ? { value: c.value, new: true } : { value: c.value };
  const pickRow = (row: number, anchor: HTMLElement, current: string | null, key?: string) =>
    picker.open({
      anchor,
      classes: classes(),
      current,
      numeric: numeric(),
      title: `label of row ${row}`,
      initialKey: key,
      onChoose: (c) => void call({ kind: "label", row, ...labelBody(c) }),
    });
  const pickRows = (target: Target, anchor: HTMLElement, title: string) =>
    picker.open({
      anchor,
      classes: classes(),
      numeric: numeric(),
      title,
      onChoose: (c) => void call({ kind: "bulk_label", target, ...labelBody(c) }),
    });

  // the focused row's image, larger (issue 13): asked for when the cursor's row changes
  // and after edits (its label may have changed); replies for an older row are dropped
  const preview = new Preview();
  const imageColumns = () => model.get("columns").filter((c) => c.kind === "image").map((c) => c.name);
  let previewRow: number | undefined;
  let previewTimer: ReturnType<typeof setTimeout> | undefined;
  const fetchPreview = () => {
    const column = imageColumns()[0];
    const row = previewRow;
    if (column === undefined || row === undefined) return;
    rpc.preview(row, column).then(
      (image) => {
        if (row === previewRow) preview.update({ image, loading: false });
      },
      (e: Error) => status(e.message, "error"),
    );
  };
  const schedulePreview = (row: number | undefined) => {
    previewRow = row;
    if (!imageColumns().length) return;
    preview.update({ loading: row !== undefined });
    clearTimeout(previewTimer);
    previewTimer = setTimeout(fetchPreview, 40); // holding an arrow key asks once it stops
  };

  const table = new Table({
    summaryHeight: SUMMARY_HEIGHT,
    height: imageColumns().length ? IMAGE_TABLE_HEIGHT : TABLE_HEIGHT,
    onColumnsShown: scheduleSummaries,
    fetch: (start, count) =>
      rpc.rows(start, count).then((page) => {
        scheduleSummaries();
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
    onPickLabel: pickRow,
    onCursor: (row) => schedulePreview(row),
  });
  const toolbar = new Toolbar({
    onFilter: (text) => save({ filter: text }),
    onBulk: bulk,
    onSelectAll: () => save({ select_all: true, selected: [] }),
    onClearSelection: () => save({ select_all: false, selected: [] }),
    onUndo: () => void call({ kind: "undo" }),
    onRedo: () => void call({ kind: "redo" }),
    onPickLabel: pickRows,
  });
  const histogram = new Histogram({ onFilter: (filter) => save({ filter }) });

  const history = new History({ onRevert: (revision) => void call({ kind: "revert", revision }) });

  const side = document.createElement("div");
  side.className = "ww-side";
  side.append(preview.node(), histogram.node(), history.node());
  const main = document.createElement("div");
  main.className = "ww-main";
  main.append(table.node(), side);
  root.append(toolbar.node(), main, picker.node());
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
        unlabelled: model.get("summary").unlabelled,
      },
    });
  };
  const syncSide = () => {
    histogram.update({
      classes: model.get("classes"),
      filter: model.get("filter"),
      label: model.get("label"),
      unlabelled: model.get("summary").unlabelled,
      unlabelledFilter: model.get("summary").unlabelled_filter,
    });
    const images = imageColumns();
    preview.update({ columns: images });
    side.classList.toggle("ww-has-preview", images.length > 0);
    history.update({ history: model.get("history"), revision: model.get("revision") });
  };
  for (const t of ["columns", "matched", "view", "sort_by", "sort_ascending", "selected", "select_all", "filter", "filter_error", "n_rows", "can_undo", "can_redo", "summary", "revision"]) {
    on(`change:${t}`, sync);
  }
  for (const t of ["classes", "filter", "label", "history", "revision", "summary", "columns"]) on(`change:${t}`, syncSide);
  on("change:revision", () => {
    if (previewRow !== undefined && imageColumns().length) fetchPreview();
  });
  on("change:error", () => {
    const e = model.get("error");
    if (e) status(e, "error");
  });
  sync();
  syncSide();
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
    clearTimeout(previewTimer);
    picker.dispose();
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
