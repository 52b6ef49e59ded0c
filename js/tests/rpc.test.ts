import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Rpc, RpcError, decodePage } from "../rpc";
import { createFakeModel, rowsReply } from "./fake_model";

describe("Rpc", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends the request with an id and resolves with the matching reply", async () => {
    const model = createFakeModel();
    const rpc = new Rpc(model);
    const p = rpc.call({ kind: "undo" });
    const sent = model.sent[0]!.content;
    expect(sent.kind).toBe("undo");
    expect(Number.isInteger(sent.id)).toBe(true);
    model.reply({ id: sent.id + 1, ok: true }); // someone else's reply: ignored
    expect(rpc.pending).toBe(1);
    model.reply({ id: sent.id, ok: true, revision: 3 });
    await expect(p).resolves.toMatchObject({ ok: true, revision: 3 });
    expect(rpc.pending).toBe(0);
  });

  it("rejects with the kernel's error text", async () => {
    const model = createFakeModel();
    const rpc = new Rpc(model);
    const p = rpc.call({ kind: "revert", revision: 99 });
    model.reply({ id: model.sent[0]!.content.id, error: "revision 99 does not exist" });
    await expect(p).rejects.toThrow(new RpcError("revision 99 does not exist"));
  });

  it("times out, and turns busy on only while a request is slow", async () => {
    const model = createFakeModel();
    const busy: boolean[] = [];
    const rpc = new Rpc(model, { timeout: 1000, busyAfter: 100, onBusy: (b) => busy.push(b) });
    const p = rpc.call({ kind: "ping" });
    const q = rpc.call({ kind: "undo" });
    vi.advanceTimersByTime(50);
    expect(busy).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(busy).toEqual([true]);
    model.reply({ id: model.sent[1]!.content.id, ok: true });
    await q;
    expect(busy).toEqual([true]); // the first is still pending
    vi.advanceTimersByTime(1000);
    await expect(p).rejects.toThrow(/no reply from the kernel to "ping"/);
    expect(busy).toEqual([true, false]);
  });

  it("quiet requests never show busy", async () => {
    const model = createFakeModel();
    const busy: boolean[] = [];
    const rpc = new Rpc(model, { busyAfter: 10, onBusy: (b) => busy.push(b) });
    const p = rpc.request({ kind: "ping" }, { quiet: true });
    vi.advanceTimersByTime(500);
    model.reply({ id: model.sent[0]!.content.id, ok: true });
    await p;
    expect(busy).toEqual([]);
  });

  it("two Rpc on one model (two views) use different ids", () => {
    const model = createFakeModel();
    new Rpc(model).call({ kind: "ping" });
    new Rpc(model).call({ kind: "ping" });
    expect(model.sent[0]!.content.id).not.toBe(model.sent[1]!.content.id);
  });

  it("decodes binary pages, copying unaligned buffers", () => {
    const { content, buffers } = rowsReply(1, 100, 3);
    const raw = new Uint8Array(8 * 3 + 1);
    raw.set(new Uint8Array(buffers[0]!.buffer), 1); // offset 1: not 8-aligned
    const page = decodePage(content as any, [new DataView(raw.buffer, 1, 24), buffers[1]!, buffers[2]!]);
    expect(Array.from(page.ids)).toEqual([100, 101, 102]);
    expect(page.columns.get("caption")).toEqual({ kind: "string", values: ["c100", "c101", "c102"] });
    expect(() => decodePage({ ...(content as any), ids: 7 }, buffers)).toThrow(/missing buffer 7/);
  });

  it("dispose rejects what is pending and stops listening", async () => {
    const model = createFakeModel();
    const rpc = new Rpc(model);
    const p = rpc.call({ kind: "undo" });
    rpc.dispose();
    await expect(p).rejects.toThrow(/widget closed/);
  });
});
