import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EXAMPLES } from "../types";
import widget, { PING_MS } from "../widget";
import { createFakeModel, type FakeModel, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));

/** Answer every "rows" request like the kernel would. */
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

async function mount(initial = {}) {
  const model = createFakeModel(initial);
  autoReply(model);
  const el = document.createElement("div");
  document.body.replaceChildren(el);
  const cleanup = widget.render({ model, el });
  await flush();
  return { model, el, cleanup };
}

describe("widget render()", () => {
  beforeEach(() => {
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(0), 0));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("asks the kernel for the first page and shows it", async () => {
    const { model, el } = await mount();
    expect(model.sent[0]!.content).toMatchObject({ kind: "rows", start: 0, count: 100 });
    await flush();
    expect(el.querySelector('.ww-row[data-position="1"]')!.getAttribute("data-row")).toBe("1");
    expect(el.querySelector(".ww-counts")!.textContent).toBe("1,000 of 1,000 rows match");
  });

  it("header clicks cycle sort: ascending, descending, off", async () => {
    const { model, el } = await mount();
    const header = el.querySelectorAll<HTMLElement>(".ww-hcell")[1]!;
    header.click();
    expect([model.get("sort_by"), model.get("sort_ascending")]).toEqual(["label", true]);
    header.click();
    expect([model.get("sort_by"), model.get("sort_ascending")]).toEqual(["label", false]);
    header.click();
    expect([model.get("sort_by"), model.get("sort_ascending")]).toEqual([null, true]);
    expect(model.saves).toBe(3);
  });

  it("clicks set the selected trait; shift-click ranges too (far ones via the kernel)", async () => {
    const { model, el } = await mount();
    await flush();
    const row = (p: number) => el.querySelector<HTMLElement>(`.ww-row[data-position="${p}"]`)!;
    row(2).dispatchEvent(new MouseEvent("click", { bubbles: true }));
    expect(model.get("selected")).toEqual([2]);
    row(5).dispatchEvent(new MouseEvent("click", { bubbles: true, metaKey: true }));
    expect(model.get("selected")).toEqual([2, 5]);
    row(8).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    expect(model.get("selected")).toEqual([5, 6, 7, 8]); // loaded rows: no round trip
    row(2).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true, ctrlKey: true }));
    expect(model.get("selected")).toEqual([2, 3, 4, 5, 6, 7, 8]);
    el.querySelector<HTMLElement>(".ww-table")!.dispatchEvent(
      new KeyboardEvent("keydown", { key: "End", bubbles: true, shiftKey: true }),
    );
    // row 999 is not loaded: the kernel resolves that range
    const ranges = model.sent.filter((m) => m.content.kind === "select_range");
    expect(ranges.map((m) => m.content)).toMatchObject([{ start: 5, stop: 999, add: false }]);
  });

  it("keys 0/1 exclude/include the selection; Ctrl-Z undoes", async () => {
    const { model, el } = await mount({ selected: [1, 2] });
    const table = el.querySelector<HTMLElement>(".ww-table")!;
    table.dispatchEvent(new KeyboardEvent("keydown", { key: "0", bubbles: true }));
    expect(model.sent.at(-1)!.content).toMatchObject({ kind: "bulk", action: "exclude", target: "selection" });
    table.dispatchEvent(new KeyboardEvent("keydown", { key: "z", ctrlKey: true, bubbles: true }));
    expect(model.sent.at(-1)!.content).toMatchObject({ kind: "undo" });
  });

  it("shows the kernel's error reply in the status line", async () => {
    const { model, el } = await mount();
    el.querySelector<HTMLButtonElement>(".ww-undo")!.click();
    model.reply({ id: model.sent.at(-1)!.content.id, error: "nothing to undo" });
    await flush();
    const status = el.querySelector(".ww-status")!;
    expect(status.querySelector(".ww-message")!.textContent).toBe("nothing to undo");
    expect(status.querySelector(".ww-summary")!.textContent).toContain("rows 1,000");
    expect(status.classList.contains("ww-status-error")).toBe(true);
  });

  it("follows trait changes from Python: new view, matched, filter", async () => {
    const { model, el } = await mount();
    model.set("filter", "label == 2");
    model.set("matched", 333);
    model.set("view", 2);
    expect(el.querySelector<HTMLInputElement>(".ww-filter")!.value).toBe("label == 2");
    expect(el.querySelector(".ww-counts")!.textContent).toBe("333 of 1,000 rows match");
    expect(model.sent.at(-1)!.content).toMatchObject({ kind: "rows", start: 0 });
  });

  it("pings the kernel every 2 s while shown, and cleanup stops it", async () => {
    vi.useFakeTimers();
    const model = createFakeModel();
    const el = document.createElement("div");
    document.body.replaceChildren(el);
    const cleanup = widget.render({ model, el });
    const pings = () => model.sent.filter((m) => m.content.kind === "ping").length;
    vi.advanceTimersByTime(PING_MS);
    expect(pings()).toBe(1);
    vi.advanceTimersByTime(PING_MS); // the first has no reply yet: no pile-up
    expect(pings()).toBe(1);
    cleanup();
    vi.advanceTimersByTime(PING_MS * 3);
    expect(pings()).toBe(1);
    expect(el.children.length).toBe(0);
  });

  it("asks for column summaries only after the first rows, for the columns on screen", async () => {
    const { model, el } = await mount();
    const kinds = model.sent.map((m) => m.content.kind);
    expect(kinds[0]).toBe("rows");
    await flush();
    const req = model.sent.find((m) => m.content.kind === "summaries")!.content;
    expect(kinds.indexOf("summaries")).toBe(-1); // not before the rows reply
    expect(req.columns).toEqual(["label", "weight", "caption"]); // no row id summary
    const ex = structuredClone(EXAMPLES.replies.summaries!.content);
    ex.summaries[0]!.name = "weight";
    model.reply({ ...ex, id: req.id, view: 1 });
    await flush();
    const cell = el.querySelector<HTMLElement>('.ww-scell[data-column="weight"]')!;
    expect(cell.querySelectorAll(".ww-bin").length).toBe(3);
    // a reply for an older view is dropped
    model.set("view", 2);
    await flush();
    await flush();
    const again = model.sent.filter((m) => m.content.kind === "summaries").at(-1)!.content;
    model.reply({ ...ex, id: again.id, view: 1, summaries: [] });
    await flush();
    expect(cell.querySelectorAll(".ww-bin").length).toBe(3);
    // a click on a top value asks the kernel to put its condition in the filter
    const cap = { ...ex.summaries[1]!, name: "caption" };
    model.reply({ id: again.id, kind: "summaries", view: 2, summaries: [cap] });
    await flush();
    el.querySelector<HTMLElement>('.ww-scell[data-column="caption"] .ww-vrow')!.click();
    expect(model.sent.at(-1)!.content).toMatchObject({ kind: "brush", column: "caption", value: "dog" });
  });
});
