import { beforeEach, describe, expect, it, vi } from "vitest";
import { PAGE_SIZE, Table, type TableOptions, type TableState } from "../clients/table";
import { decodePage } from "../rpc";
import type { Page } from "../types";
import { defaultTraits, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));

function makeTable(overrides: Partial<TableOptions> = {}, view = 1) {
  const fetches: [number, number][] = [];
  const events = { sort: [] as string[], select: [] as any[], keys: [] as string[], edits: [] as [number, number][], errors: [] as string[] };
  const table = new Table({
    fetch: async (start, count) => {
      fetches.push([start, count]);
      const { content, buffers } = rowsReply(0, start, count, view);
      return decodePage(content as any, buffers) as Page;
    },
    onSort: (c) => events.sort.push(c),
    onEdit: async (row, value) => {
      events.edits.push([row, value]);
    },
    onSelect: (e) => events.select.push(e),
    onKey: (k) => events.keys.push(k),
    onError: (m) => events.errors.push(m),
    height: 28 * 11, // header + 10 rows
    ...overrides,
  });
  document.body.replaceChildren(table.node());
  return { table, fetches, events };
}

const COLUMNS = defaultTraits().columns;

function state(extra: Partial<TableState> = {}): TableState {
  return {
    columns: COLUMNS,
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

const rows = () => Array.from(document.querySelectorAll<HTMLElement>(".ww-row")).filter((r) => r.style.display !== "none");
const rowAt = (pos: number) => document.querySelector<HTMLElement>(`.ww-row[data-position="${pos}"]`)!;

describe("Table", () => {
  beforeEach(() => document.body.replaceChildren());

  it("renders only the visible window plus a margin, from fetched pages", async () => {
    const { table, fetches } = makeTable();
    table.update(state());
    expect(fetches).toEqual([[0, PAGE_SIZE]]);
    expect(rows().length).toBeLessThan(40); // not 1000
    expect(rowAt(0).classList.contains("ww-loading")).toBe(true);
    await flush();
    expect(rowAt(0).classList.contains("ww-loading")).toBe(false);
    expect(rowAt(5).dataset.row).toBe("5");
    const cells = rowAt(5).querySelectorAll(".ww-cell");
    expect(Array.from(cells, (c) => c.textContent)).toEqual(["5", "2", "1", "c5"]);
    expect(document.querySelectorAll(".ww-hcell").length).toBe(4);
  });

  it("renders markup in cells as text, never as HTML", async () => {
    const { table } = makeTable();
    table.update(state());
    await flush();
    const cap = rowAt(0).querySelectorAll(".ww-cell")[3]!;
    expect(cap.textContent).toBe("<img src=x onerror=alert(1)>");
    expect((cap as HTMLElement).title).toBe("<img src=x onerror=alert(1)>");
    expect(document.querySelector("img")).toBeNull();
  });

  it("reuses its row elements and keeps stale pages until the new view arrives", async () => {
    const { table, fetches } = makeTable();
    table.update(state());
    await flush();
    const before = rows()[3];
    table.update(state({ view: 2, total: 500 }));
    expect(fetches.length).toBe(2); // refetch for the new view
    expect(rows()[3]).toBe(before); // same DOM node
    expect(rowAt(3).classList.contains("ww-stale")).toBe(true);
    expect(rowAt(3).classList.contains("ww-loading")).toBe(false); // no blank flash
  });

  it("drops pages of an older view", async () => {
    let resolveOld: (p: Page) => void = () => {};
    const { table } = makeTable({
      fetch: (start, count) =>
        new Promise<Page>((res) => {
          resolveOld = res;
          void start;
          void count;
        }),
    });
    table.update(state({ view: 5 }));
    const { content, buffers } = rowsReply(0, 0, 100, 4);
    resolveOld(decodePage(content as any, buffers));
    await flush();
    expect(rowAt(0).classList.contains("ww-loading")).toBe(true);
  });

  it("header click asks to sort; the arrow shows the direction", () => {
    const { table, events } = makeTable();
    table.update(state({ sortBy: "label", sortAscending: false }));
    const hcells = document.querySelectorAll<HTMLElement>(".ww-hcell");
    hcells[1]!.click();
    expect(events.sort).toEqual(["label"]);
    expect(hcells[1]!.querySelector(".ww-sort")!.textContent).toBe("▼");
    expect(hcells[1]!.getAttribute("aria-sort")).toBe("descending");
    expect(hcells[2]!.querySelector(".ww-sort")!.textContent).toBe("");
  });

  it("click, ctrl-click and shift-click emit selection events", async () => {
    const { table, events } = makeTable();
    table.update(state());
    await flush();
    rowAt(2).querySelector(".ww-cell")!.dispatchEvent(new MouseEvent("click", { bubbles: true }));
    rowAt(4).dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true }));
    rowAt(7).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    expect(events.select).toEqual([
      { kind: "click", row: 2, position: 2 },
      { kind: "toggle", row: 4, position: 4 },
      { kind: "range", anchor: 4, position: 7, add: false },
    ]);
  });

  it("idsBetween answers from loaded pages of the current view only", async () => {
    const { table } = makeTable();
    table.update(state());
    await flush();
    expect(table.idsBetween(7, 3)).toEqual([3, 4, 5, 6, 7]);
    expect(table.idsBetween(90, 150)).toBeUndefined(); // page 1 not loaded
    table.update({ view: 2 });
    expect(table.idsBetween(3, 4)).toBeUndefined(); // stale
  });

  it("marks selected rows (and all rows with select all)", async () => {
    const { table } = makeTable();
    table.update(state({ selected: new Set([1, 3]) }));
    await flush();
    expect(rows().filter((r) => r.classList.contains("ww-selected")).map((r) => r.dataset.row)).toEqual(["1", "3"]);
    table.update({ selectAll: true });
    expect(rows().every((r) => r.classList.contains("ww-selected"))).toBe(true);
  });

  it("inline edit: Enter commits, invalid input is refused in place, Esc cancels", async () => {
    const { table, events } = makeTable();
    table.update(state());
    await flush();
    rowAt(3).dispatchEvent(new MouseEvent("dblclick", { bubbles: true }));
    let input = document.querySelector<HTMLInputElement>("input.ww-edit")!;
    expect(input).not.toBeNull();
    expect(input.value).toBe("1");
    input.value = "abc";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(input.classList.contains("ww-invalid")).toBe(true);
    expect(input.title).toMatch(/not a number/);
    input.value = "-2";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(input.title).toMatch(/>= 0/);
    expect(events.edits).toEqual([]);
    input.value = "0.25";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(events.edits).toEqual([[3, 0.25]]);
    await flush();
    expect(document.querySelector("input.ww-edit")).toBeNull();

    expect(table.edit(4)).toBe(true);
    input = document.querySelector<HTMLInputElement>("input.ww-edit")!;
    input.value = "9";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(document.querySelector("input.ww-edit")).toBeNull();
    expect(events.edits).toEqual([[3, 0.25]]);
    expect(rowAt(4).querySelectorAll(".ww-cell")[2]!.textContent).toBe("1");
  });

  it("a rejected edit keeps the editor open with the kernel's message", async () => {
    const { table } = makeTable({ onEdit: () => Promise.reject(new Error("weights must be finite")) });
    table.update(state());
    await flush();
    table.edit(1);
    const input = document.querySelector<HTMLInputElement>("input.ww-edit")!;
    input.value = "3";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    await flush();
    expect(input.isConnected).toBe(true);
    expect(input.title).toBe("weights must be finite");
  });

  it("keyboard: arrows move, space toggles, 0/1 and Ctrl-Z/Shift-Ctrl-Z act", async () => {
    const { table, events } = makeTable();
    table.update(state());
    await flush();
    const key = (k: string, init: KeyboardEventInit = {}) => {
      const e = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init });
      table.node().dispatchEvent(e);
      return e;
    };
    key("ArrowDown");
    key("ArrowDown");
    key("ArrowUp");
    expect(table.cursor).toBe(1);
    expect(rowAt(1).classList.contains("ww-cursor")).toBe(true);
    key(" ");
    expect(events.select.at(-1)).toEqual({ kind: "toggle", row: 1, position: 1 });
    key("0");
    key("1");
    expect(key("z", { ctrlKey: true }).defaultPrevented).toBe(true);
    key("z", { metaKey: true, shiftKey: true });
    key("a", { ctrlKey: true });
    expect(events.keys).toEqual(["set0", "set1", "undo", "redo"]);
    expect(events.select.at(-1)).toEqual({ kind: "all" });
    key("ArrowDown", { shiftKey: true });
    expect(events.select.at(-1)).toEqual({ kind: "range", anchor: 1, position: 2, add: false });
    expect(key("x").defaultPrevented).toBe(false); // not ours: left alone
  });

  it("scales the scrollbar for 10 million rows and still fetches the right page", () => {
    const { table, fetches } = makeTable();
    table.update(state({ total: 10_000_000 }));
    const canvas = document.querySelector<HTMLElement>(".ww-canvas")!;
    expect(Number.parseFloat(canvas.style.height)).toBeLessThanOrEqual(8_000_028);
    table.scrollTo(9_999_999);
    expect(fetches.at(-1)![0]).toBe(9_999_900);
  });

  it("shows an empty message when nothing matches", () => {
    const { table } = makeTable();
    table.update(state({ total: 0 }));
    expect(document.querySelector<HTMLElement>(".ww-empty")!.style.display).toBe("");
  });

  it("a new filter, sort or row count sends a deep-scrolled view back to the top", async () => {
    const { table, fetches } = makeTable({}, 1);
    table.update(state({ total: 1_000_000 }));
    const scroll = document.querySelector<HTMLElement>(".ww-scroll")!;
    const layer = document.querySelector<HTMLElement>(".ww-rows")!;
    const canvas = document.querySelector<HTMLElement>(".ww-canvas")!;
    scroll.scrollTop = 4_000_000;
    table.render();
    expect(layer.style.transform).toMatch(/translateY\(3\d{6}/);
    expect(rows().some((r) => Number(r.dataset.position) > 400_000)).toBe(true);
    table.update({ view: 2 }); // an edit refetches in place: the offset stays
    expect(scroll.scrollTop).toBe(4_000_000);
    fetches.length = 0;
    table.update({ view: 3, filter: "loss > 9", total: 300 }); // a few hundred rows match
    expect(scroll.scrollTop).toBe(0);
    expect(layer.style.transform).toBe("translateY(0px)");
    expect(canvas.style.height).toBe(`${28 + 300 * 28}px`); // the spacer follows the count
    expect(table.cursor).toBe(0);
    expect(fetches[0]).toEqual([0, PAGE_SIZE]);
    expect(Math.max(...rows().map((r) => Number(r.dataset.position)))).toBeLessThan(300);
    scroll.scrollTop = 2000;
    table.render();
    table.update({ sortBy: "loss" });
    expect(scroll.scrollTop).toBe(0);
  });
});
