// The table's side of label editing (issue 13): the label column as a focus target,
// Enter / typing / double-click open the picker, unlabelled rows, the cursor's row.
import { beforeEach, describe, expect, it } from "vitest";
import { labelText, Table, type TableOptions, type TableState } from "../clients/table";
import { decodePage } from "../rpc";
import type { Page } from "../types";
import { defaultTraits, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));

/** Rows whose id is a multiple of 4 are unlabelled (NaN, as the kernel sends them). */
function page(start: number, count: number, view = 1, total = 1000): Page {
  const { content, buffers } = rowsReply(0, start, count, view, total);
  const p = decodePage(content as any, buffers);
  const labels = p.columns.get("label")!;
  if (labels.kind === "numeric") labels.values.forEach((_, i) => (start + i) % 4 === 0 && (labels.values[i] = Number.NaN));
  return p;
}

function makeTable(overrides: Partial<TableOptions> = {}) {
  const picks: { row: number; anchor: HTMLElement; current: string | null; key?: string }[] = [];
  const cursors: (number | undefined)[] = [];
  const edits: [number, number][] = [];
  const keys: string[] = [];
  const table = new Table({
    fetch: async (start, count) => page(start, count),
    onSort: () => {},
    onEdit: async (row, value) => void edits.push([row, value]),
    onSelect: () => {},
    onKey: (k) => keys.push(k),
    onError: () => {},
    onPickLabel: (row, anchor, current, key) => picks.push({ row, anchor, current, key }),
    onCursor: (row) => cursors.push(row),
    height: 28 * 11,
    ...overrides,
  });
  document.body.replaceChildren(table.node());
  return { table, picks, cursors, edits, keys };
}

function state(extra: Partial<TableState> = {}): TableState {
  return {
    columns: defaultTraits().columns,
    total: 1000,
    view: 1,
    filter: "",
    sortBy: null,
    sortAscending: true,
    selected: new Set(),
    selectAll: false,
    ...extra,
  };
}

const rowAt = (pos: number) => document.querySelector<HTMLElement>(`.ww-row[data-position="${pos}"]`)!;
const labelCell = (pos: number) => rowAt(pos).querySelector<HTMLElement>(".ww-role-label")!;

describe("Table: labels", () => {
  beforeEach(() => document.body.replaceChildren());

  const key = (table: Table, k: string, init: KeyboardEventInit = {}) => {
    const e = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init });
    table.node().dispatchEvent(e);
    return e;
  };

  it("shows unlabelled rows as 'unlabelled', and labels as text", async () => {
    const { table } = makeTable();
    table.update(state());
    await flush();
    expect(labelCell(4).textContent).toBe("unlabelled");
    expect(labelCell(4).classList.contains("ww-unlabelled")).toBe(true);
    expect(labelCell(5).textContent).toBe("2");
    expect(labelCell(5).classList.contains("ww-unlabelled")).toBe(false);
  });

  it("Left/Right move the cursor between the label and the weight; Enter opens the matching editor", async () => {
    const { table, picks } = makeTable();
    table.update(state());
    await flush();
    expect(table.column).toBe("weight");
    key(table, "ArrowDown");
    expect(rowAt(1).querySelector(".ww-role-weight")!.classList.contains("ww-cell-focus")).toBe(true);
    expect(key(table, "ArrowLeft").defaultPrevented).toBe(true);
    expect(table.column).toBe("label");
    expect(labelCell(1).classList.contains("ww-cell-focus")).toBe(true);
    key(table, "Enter");
    expect(picks).toEqual([{ row: 1, anchor: labelCell(1), current: "1", key: undefined }]);
    expect(document.querySelector("input.ww-edit")).toBeNull();
    key(table, "ArrowRight");
    key(table, "Enter");
    expect(document.querySelector("input.ww-edit")).not.toBeNull(); // the weight editor
    expect(picks.length).toBe(1);
  });

  it("typing on the label cell hands the key to the picker (0/1 then label, not weigh)", async () => {
    const { table, picks, keys } = makeTable();
    table.update(state());
    await flush();
    key(table, "ArrowDown");
    key(table, "ArrowDown");
    key(table, "ArrowDown");
    key(table, "ArrowDown"); // row 4: unlabelled
    key(table, "ArrowLeft");
    key(table, "7");
    key(table, "1");
    key(table, "c");
    key(table, "Delete");
    expect(picks.map((p) => [p.row, p.current, p.key])).toEqual([
      [4, null, "7"],
      [4, null, "1"],
      [4, null, "c"],
      [4, null, "Delete"],
    ]);
    expect(keys).toEqual([]); // no weight set to 0 or 1
    expect(key(table, " ").defaultPrevented).toBe(true); // space still toggles the selection
    expect(picks.length).toBe(4);
  });

  it("double-click on a label cell opens the picker; elsewhere the weight editor", async () => {
    const { table, picks } = makeTable();
    table.update(state());
    await flush();
    labelCell(6).dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
    expect(picks.map((p) => [p.row, p.current])).toEqual([[6, "0"]]);
    expect(table.cursor).toBe(6);
    rowAt(3).querySelector<HTMLElement>(".ww-role-row")!.dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
    expect(document.querySelector("input.ww-edit")).not.toBeNull();
    expect(picks.length).toBe(1);
  });

  it("a click on a label cell puts the cursor on the label column", async () => {
    const { table } = makeTable();
    table.update(state());
    await flush();
    labelCell(2).dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(table.column).toBe("label");
    rowAt(2).querySelector<HTMLElement>(".ww-role-weight")!.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(table.column).toBe("weight");
  });

  it("without a picker the label column is not a focus target", async () => {
    const { table } = makeTable({ onPickLabel: undefined });
    table.update(state());
    await flush();
    key(table, "ArrowLeft");
    expect(table.column).toBe("weight");
    expect(table.pickLabel(1)).toBe(false);
  });

  it("reports the row under the cursor when it changes (moves, pages arriving)", async () => {
    const { table, cursors } = makeTable();
    table.update(state());
    expect(cursors).toEqual([]); // no page yet: nothing to report
    await flush();
    expect(cursors).toEqual([0]);
    key(table, "ArrowDown");
    key(table, "ArrowDown");
    table.render();
    expect(cursors).toEqual([0, 1, 2]);
  });

  it("fewer matching rows after an edit keep the cursor's position (the next rows slide in)", async () => {
    const { table } = makeTable();
    table.update(state());
    await flush();
    for (let i = 0; i < 5; i++) key(table, "ArrowDown");
    expect(table.cursor).toBe(5);
    table.update({ view: 2, total: 999 }); // labelling row 5 took it out of the filter
    expect(table.cursor).toBe(5);
    table.update({ view: 3, total: 998, filter: "label == 2" }); // a new filter: the top
    expect(table.cursor).toBe(0);
  });

  it("labelText: NaN and missing text are unlabelled", () => {
    expect(labelText({ kind: "numeric", values: Float64Array.from([3, Number.NaN]) }, 0)).toBe("3");
    expect(labelText({ kind: "numeric", values: Float64Array.from([3, Number.NaN]) }, 1)).toBeNull();
    expect(labelText({ kind: "string", values: ["cat", null] }, 1)).toBeNull();
    expect(labelText({ kind: "bool", values: Uint8Array.from([1]) }, 0)).toBe("true");
    expect(labelText(undefined, 0)).toBeNull();
  });
});
