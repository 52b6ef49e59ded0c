// The page side of the contract: the generated examples (from weightwidget/_protocol.py)
// go through rpc.ts and the widget exactly as the kernel's messages would.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Rpc, RpcError, decodePage } from "../rpc";
import { EXAMPLES, PAGE_TRAITS, type Request, type RowsReply } from "../types";
import widget from "../widget";
import { createFakeModel, type FakeModel, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));
const views = (bufs: number[][]) => bufs.map((b) => new DataView(Uint8Array.from(b).buffer));

describe("contract examples", () => {
  it("decodes the example page of rows", () => {
    const ex = EXAMPLES.replies.rows!;
    const page = decodePage(ex.content as RowsReply, views(ex.buffers));
    expect(Array.from(page.ids)).toEqual([0, 1]);
    expect(page.columns.get("weight")).toEqual({ kind: "numeric", values: Float64Array.from([2, 0]) });
    expect(page.columns.get("flagged")).toEqual({ kind: "bool", values: Uint8Array.from([1, 0]) });
    expect(page.columns.get("caption")).toEqual({ kind: "string", values: ["<b>a</b>", null] });
    const img = page.columns.get("image");
    expect(img).toMatchObject({ kind: "image", height: 2, width: 2, channels: 1 });
    expect(img?.kind === "image" && Array.from(img.data)).toEqual([0, 255, 255, 0, 9, 9, 9, 9]);
  });

  it("sends every example request and settles it with the example replies", async () => {
    const model = createFakeModel();
    const rpc = new Rpc(model);
    for (const req of EXAMPLES.requests) {
      const { id: _, ...body } = req;
      const p = rpc.request(body as Request);
      const sent = model.sent.at(-1)!.content;
      expect(sent).toEqual({ ...body, id: sent.id });
      const ex = EXAMPLES.replies[req.kind as keyof typeof EXAMPLES.replies] ?? EXAMPLES.replies.ping!;
      model.reply({ ...ex.content, id: sent.id }, views(ex.buffers));
      await expect(p).resolves.toMatchObject({ content: { id: sent.id } });
    }
    const p = rpc.call({ kind: "revert", revision: 9 });
    model.reply({ ...EXAMPLES.replies.error.content, id: model.sent.at(-1)!.content.id });
    await expect(p).rejects.toThrow(new RpcError(EXAMPLES.replies.error.content.error));
    expect(rpc.pending).toBe(0);
  });

  it("the example traits render", async () => {
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(0), 0));
    const model = createFakeModel(structuredClone(EXAMPLES.traits));
    const el = document.createElement("div");
    document.body.replaceChildren(el);
    const cleanup = widget.render({ model, el });
    expect(el.querySelector<HTMLInputElement>(".ww-filter")!.value).toBe(EXAMPLES.traits.filter);
    expect(el.querySelector(".ww-hcell[data-column='loss'] .ww-sort")!.textContent).toBe("▼");
    expect(el.querySelector(".ww-filter-error")).not.toBeNull();
    cleanup();
    vi.unstubAllGlobals();
  });
});

describe("the page sets only the traits it owns", () => {
  let model: FakeModel;
  const keys = new Set<string>();
  beforeEach(() => {
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(0), 0));
    model = createFakeModel();
    const set = model.set.bind(model);
    model.set = (name, value) => {
      keys.add(name);
      set(name, value);
    };
    const send = model.send.bind(model);
    model.send = (content: any, cb?: unknown, bufs?: any) => {
      send(content, cb, bufs);
      if (content.kind === "rows") {
        const r = rowsReply(content.id, content.start, content.count, model.get("view"));
        queueMicrotask(() => model.reply(r.content, r.buffers));
      }
    };
  });
  afterEach(() => vi.unstubAllGlobals());

  it("through clicks, keys, typing and buttons", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const el = document.createElement("div");
    document.body.replaceChildren(el);
    widget.render({ model, el });
    await vi.runOnlyPendingTimersAsync();
    const row = (p: number) => el.querySelector<HTMLElement>(`.ww-row[data-position="${p}"]`)!;
    el.querySelectorAll<HTMLElement>(".ww-hcell")[1]!.click();
    row(2).dispatchEvent(new MouseEvent("click", { bubbles: true }));
    row(4).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
    el.querySelector<HTMLElement>(".ww-table")!.dispatchEvent(
      new KeyboardEvent("keydown", { key: "a", ctrlKey: true, bubbles: true }),
    );
    const box = el.querySelector<HTMLInputElement>(".ww-filter")!;
    box.value = "label == 1";
    box.dispatchEvent(new Event("input"));
    await vi.runOnlyPendingTimersAsync();
    for (const b of el.querySelectorAll<HTMLButtonElement>("button")) b.click();
    vi.useRealTimers();
    expect(keys.size).toBeGreaterThan(2);
    for (const k of keys) expect(PAGE_TRAITS as readonly string[]).toContain(k);
  });
});
