// Label editing through the whole page (issue 13): keys and clicks become "label",
// "bulk_label" and "preview" requests of the contract; replies show in the page.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Histogram } from "../clients/histogram";
import type { ClassInfo, Traits } from "../types";
import widget from "../widget";
import { createFakeModel, type FakeModel, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CLASSES: ClassInfo[] = Array.from({ length: 10 }, (_, i) => ({
  value: String(i),
  count: 90,
  weight_sum: 90,
  share: 0.09,
  effective_share: 0.1,
  filter: `label == ${i}`,
}));

function autoReply(model: FakeModel) {
  const send = model.send.bind(model);
  model.send = (content: any, cb?: unknown, bufs?: any) => {
    send(content, cb, bufs);
    if (content.kind === "rows") {
      const { content: c, buffers } = rowsReply(content.id, content.start, content.count, model.get("view"));
      queueMicrotask(() => model.reply(c, buffers));
    }
  };
}

async function mount(initial: Partial<Traits> = {}) {
  const model = createFakeModel({ classes: CLASSES, summary: { rows: 1000, included: 1000, weight_sum: 1000, ess: 1000, unlabelled: 100, unlabelled_filter: "label is missing" }, ...initial });
  autoReply(model);
  const el = document.createElement("div");
  document.body.replaceChildren(el);
  const cleanup = widget.render({ model, el });
  await flush();
  await flush();
  return { model, el, cleanup };
}

const sent = (model: FakeModel, kind: string) => model.sent.filter((m) => m.content.kind === kind).map((m) => m.content);
const keydown = (target: Element, key: string) =>
  target.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));

describe("label editing in the page", () => {
  beforeEach(() => {
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(0), 0));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("keyboard: Left to the label, Enter opens the picker, a digit sends one label request", async () => {
    const { model, el } = await mount();
    const table = el.querySelector<HTMLElement>(".ww-table")!;
    table.focus();
    keydown(table, "ArrowDown");
    keydown(table, "ArrowLeft");
    keydown(table, "Enter");
    const picker = el.querySelector<HTMLElement>(".ww-picker")!;
    expect(picker.style.display).toBe("");
    expect(picker.querySelector(".ww-picker-title")!.textContent).toBe("label of row 1");
    expect(picker.querySelector(".ww-pick-current .ww-pick-name")!.textContent).toBe("1"); // row 1's label
    const search = picker.querySelector<HTMLInputElement>(".ww-picker-search")!;
    expect(document.activeElement).toBe(search);
    keydown(search, "4");
    expect(sent(model, "label")).toEqual([{ kind: "label", row: 1, value: "4", id: expect.any(Number) }]);
    expect(picker.style.display).toBe("none");
    expect(document.activeElement).toBe(table); // the keyboard is back in the table
    const id = sent(model, "label")[0]!.id;
    model.reply({ id, ok: true, revision: 1, rows: 1, message: "r1: set label of row 1 to 4" });
    await flush();
    expect(el.querySelector(".ww-message")!.textContent).toBe("r1: set label of row 1 to 4");
  });

  it("unlabelled and new classes travel as null and new: true; refusals show in the status", async () => {
    const { model, el } = await mount();
    const table = el.querySelector<HTMLElement>(".ww-table")!;
    keydown(table, "ArrowLeft");
    keydown(table, "Delete"); // typed on the label cell: unlabelled at once
    keydown(table, "Enter");
    const search = el.querySelector<HTMLInputElement>(".ww-picker-search")!;
    for (const ch of "+12") {
      search.value += ch;
      search.dispatchEvent(new Event("input"));
    }
    keydown(search, "ArrowDown");
    keydown(search, "Enter");
    expect(sent(model, "label").map(({ id: _, ...r }) => r)).toEqual([
      { kind: "label", row: 0, value: null },
      { kind: "label", row: 0, value: "12", new: true },
    ]);
    model.reply({ id: sent(model, "label")[1]!.id, error: "label column 'label' holds whole numbers" });
    await flush();
    expect(el.querySelector(".ww-message")!.textContent).toBe("label column 'label' holds whole numbers");
    expect(el.querySelector(".ww-status")!.classList.contains("ww-status-error")).toBe(true);
  });

  it("the toolbar's Label… sets the label of the chosen rows with the same picker", async () => {
    const { model, el } = await mount({ filter: "loss > 2", matched: 40 });
    const button = el.querySelector<HTMLButtonElement>(".ww-set-label")!;
    button.focus(); // a browser focuses a clicked button; jsdom does not
    button.click();
    const picker = el.querySelector<HTMLElement>(".ww-picker")!;
    expect(picker.querySelector(".ww-picker-title")!.textContent).toBe("label of 40 rows matching");
    keydown(picker.querySelector(".ww-picker-search")!, "7");
    expect(sent(model, "bulk_label").map(({ id: _, ...r }) => r)).toEqual([{ kind: "bulk_label", target: "matched", value: "7" }]);
    expect(document.activeElement).toBe(button);
    model.set("selected", [3, 5]);
    button.click();
    expect(picker.querySelector(".ww-picker-title")!.textContent).toBe("label of 2 rows selected");
    keydown(picker.querySelector(".ww-picker-search")!, "Delete");
    expect(sent(model, "bulk_label").at(-1)).toMatchObject({ target: "selection", value: null });
  });

  it("the class panel lists the unlabelled rows (a click filters to them); the status band counts them", async () => {
    const { model, el } = await mount();
    const missing = el.querySelector<HTMLElement>(".ww-class-missing")!;
    expect(missing.querySelector(".ww-class-name")!.textContent).toBe("unlabelled");
    expect(missing.title).toMatch(/^100 unlabelled rows/);
    missing.click();
    expect(model.get("filter")).toBe("label is missing");
    expect(el.querySelector(".ww-summary")!.textContent).toContain("unlabelled 100");
    model.set("summary", { ...model.get("summary"), unlabelled: 0 });
    expect(el.querySelector(".ww-class-missing")).toBeNull();
    expect(el.querySelector(".ww-summary")!.textContent).not.toContain("unlabelled");
  });

  it("no image column: no preview and no preview requests", async () => {
    const { model, el } = await mount();
    await wait(60);
    expect(el.querySelector<HTMLElement>(".ww-preview")!.style.display).toBe("none");
    expect(sent(model, "preview")).toEqual([]);
  });

  it("asks for the focused row's image, drops replies for rows left behind, refreshes after edits", async () => {
    const columns = [...createFakeModel().get("columns"), { name: "image", kind: "image", role: "data" } as const];
    const { model, el } = await mount({ columns });
    await wait(60);
    expect(sent(model, "preview").map(({ id: _, ...r }) => r)).toEqual([{ kind: "preview", row: 0, column: "image" }]);
    const reply = (req: any, label: string | null) =>
      model.reply(
        { id: req.id, kind: "preview", row: req.row, column: "image", label, buffer: 0, height: 1, width: 1, channels: 1 },
        [new DataView(new Uint8Array([200]).buffer)],
      );
    reply(sent(model, "preview")[0], "0");
    await flush();
    expect(el.querySelector(".ww-preview-row")!.textContent).toBe("row 0");
    expect(el.querySelector(".ww-preview-label")!.textContent).toBe("label 0");
    // holding the arrow key: one request once it stops
    const table = el.querySelector<HTMLElement>(".ww-table")!;
    keydown(table, "ArrowDown");
    keydown(table, "ArrowDown");
    keydown(table, "ArrowDown");
    await wait(60);
    const asked = sent(model, "preview");
    expect(asked.map((r) => r.row)).toEqual([0, 3]);
    keydown(table, "ArrowUp");
    reply(asked[1], "0"); // arrives after the cursor moved on: dropped
    await flush();
    expect(el.querySelector(".ww-preview-row")!.textContent).toBe("row 0");
    expect(el.querySelector(".ww-preview")!.classList.contains("ww-preview-loading")).toBe(true);
    await wait(60);
    reply(sent(model, "preview").at(-1), null);
    await flush();
    expect(el.querySelector(".ww-preview-row")!.textContent).toBe("row 2");
    expect(el.querySelector(".ww-preview-label")!.textContent).toBe("unlabelled");
    // a new revision (a label edit): the same row is asked again
    const n = sent(model, "preview").length;
    model.set("revision", 1);
    expect(sent(model, "preview").length).toBe(n + 1);
    expect(sent(model, "preview").at(-1)).toMatchObject({ row: 2 });
  });
});

describe("class panel with unlabelled rows", () => {
  it("the unlabelled bar is cut at full width; the class bars keep their scale", () => {
    const filters: string[] = [];
    const h = new Histogram({ onFilter: (f) => filters.push(f) });
    document.body.replaceChildren(h.node());
    const two = CLASSES.slice(0, 2).map((c, i) => ({ ...c, count: 50 * (i + 1), share: 0.05 * (i + 1), effective_share: i ? 0.6 : 0.4 }));
    h.update({ classes: two, filter: "", label: "label", unlabelled: 850, unlabelledFilter: "`my label` is missing" });
    const rows = Array.from(document.querySelectorAll<HTMLElement>(".ww-class"));
    const widths = (r: HTMLElement) => Array.from(r.querySelectorAll<HTMLElement>(".ww-bar"), (b) => b.style.width);
    expect(widths(rows[1]!).map(parseFloat)).toEqual([16.666666666666668, 100]); // scaled to the classes
    expect(widths(rows[2]!)).toEqual(["100%", "0%"]); // 85% of the rows, never trained on
    expect(rows[2]!.querySelector(".ww-class-nums")!.textContent).toBe("85.0% → 0.0%");
    rows[2]!.click();
    expect(filters).toEqual(["`my label` is missing"]);
    h.update({ filter: "`my label` is missing" });
    expect(document.querySelector(".ww-class-missing")!.classList.contains("ww-active")).toBe(true);
  });
});
