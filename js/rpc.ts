// The only module that talks to the kernel with custom messages: it owns request ids,
// pending promises, timeouts, error replies, binary buffers and the busy state.
import type { ColumnData, ErrorReply, Model, OkReply, Page, PreviewImage, PreviewReply, Request, RowsReply } from "./types";

export class RpcError extends Error {}

interface Pending {
  resolve: (value: { content: any; buffers: DataView[] }) => void;
  reject: (reason: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  slow: ReturnType<typeof setTimeout> | undefined;
}

export interface RpcOptions {
  /** Reject a request with no reply after this many ms. */
  timeout?: number;
  /** A request pending longer than this turns the busy state on. */
  busyAfter?: number;
  /** Called whenever the busy state flips. */
  onBusy?: (busy: boolean) => void;
}

function toDataView(b: unknown): DataView {
  if (b instanceof DataView) return b;
  if (b instanceof ArrayBuffer) return new DataView(b);
  if (ArrayBuffer.isView(b)) return new DataView(b.buffer, b.byteOffset, b.byteLength);
  throw new RpcError("reply buffer is not binary");
}

/** Copy a buffer into a fresh, aligned ArrayBuffer (kernel buffers may be unaligned). */
function copy(view: DataView): ArrayBuffer {
  const out = new ArrayBuffer(view.byteLength);
  new Uint8Array(out).set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  return out;
}

export class Rpc {
  #model: Model;
  // ids start at a random point: two views of one model share replies (msg:custom
  // reaches every view), so each view must recognise only its own ids
  #next = Math.floor(Math.random() * 2 ** 40) + 1;
  #pending = new Map<number, Pending>();
  #slowCount = 0;
  #timeout: number;
  #busyAfter: number;
  #onBusy: (busy: boolean) => void;
  #listener: (msg: unknown, buffers?: unknown[]) => void;

  constructor(model: Model, options: RpcOptions = {}) {
    this.#model = model;
    this.#timeout = options.timeout ?? 30_000;
    this.#busyAfter = options.busyAfter ?? 150;
    this.#onBusy = options.onBusy ?? (() => {});
    this.#listener = (msg, buffers) => this.#receive(msg, buffers ?? []);
    model.on("msg:custom", this.#listener);
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Send one request; resolves with the reply, rejects with RpcError on an error reply. */
  request(req: Request, { quiet = false } = {}): Promise<{ content: any; buffers: DataView[] }> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id);
        reject(new RpcError(`no reply from the kernel to "${req.kind}" within ${this.#timeout / 1000} s`));
      }, this.#timeout);
      // a quiet request (the background ping) never turns the busy state on
      const slow = setTimeout(
        () => {
          if (this.#slowCount++ === 0) this.#onBusy(true);
          const p = this.#pending.get(id);
          if (p) p.slow = undefined;
        },
        quiet ? 2 ** 31 - 1 : this.#busyAfter,
      );
      this.#pending.set(id, { resolve, reject, timer, slow });
      this.#model.send({ ...req, id });
    });
  }

  /** Like request() but resolves with an OkReply. */
  async call(req: Request): Promise<OkReply> {
    const { content } = await this.request(req);
    return content as OkReply;
  }

  /** Ask for rows start..start+count of the current view and decode the buffers. */
  async rows(start: number, count: number): Promise<Page> {
    const { content, buffers } = await this.request({ kind: "rows", start, count });
    return decodePage(content as RowsReply, buffers);
  }

  /** Ask for one row's image, larger than its thumbnail (quiet: it follows the cursor). */
  async preview(row: number, column: string): Promise<PreviewImage> {
    const { content, buffers } = await this.request({ kind: "preview", row, column }, { quiet: true });
    return decodePreview(content as PreviewReply, buffers);
  }

  dispose(): void {
    this.#model.off("msg:custom", this.#listener);
    for (const [id, p] of this.#pending) {
      this.#settle(id);
      p.reject(new RpcError("widget closed"));
    }
  }

  #settle(id: number): Pending | undefined {
    const p = this.#pending.get(id);
    if (!p) return undefined;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (p.slow !== undefined) clearTimeout(p.slow);
    else if (--this.#slowCount === 0) this.#onBusy(false);
    return p;
  }

  #receive(msg: unknown, buffers: unknown[]): void {
    if (typeof msg !== "object" || msg === null || typeof (msg as { id?: unknown }).id !== "number") {
      return; // not a reply of ours
    }
    const reply = msg as { id: number };
    const p = this.#settle(reply.id);
    if (!p) return; // timed out or from another view of this model
    if ("error" in reply) {
      p.reject(new RpcError(String((reply as ErrorReply).error)));
      return;
    }
    try {
      p.resolve({ content: reply, buffers: buffers.map(toDataView) });
    } catch (e) {
      p.reject(e instanceof Error ? e : new RpcError(String(e)));
    }
  }
}

/** Decode a "rows" reply: JSON meta plus one binary buffer per numeric/bool/image column. */
export function decodePage(reply: RowsReply, buffers: DataView[]): Page {
  const buf = (i: number): ArrayBuffer => {
    const b = buffers[i];
    if (b === undefined) throw new RpcError(`rows reply refers to missing buffer ${i}`);
    return copy(b);
  };
  const columns = new Map<string, ColumnData>();
  for (const c of reply.columns) {
    if (c.kind === "string") {
      columns.set(c.name, { kind: "string", values: c.values });
    } else if (c.kind === "image") {
      columns.set(c.name, {
        kind: "image",
        height: c.height,
        width: c.width,
        channels: c.channels,
        data: new Uint8Array(buf(c.buffer)),
      });
    } else if (c.kind === "bool") {
      columns.set(c.name, { kind: "bool", values: new Uint8Array(buf(c.buffer)) });
    } else {
      columns.set(c.name, { kind: "numeric", values: new Float64Array(buf(c.buffer)) });
    }
  }
  return {
    view: reply.view,
    start: reply.start,
    count: reply.count,
    total: reply.total,
    ids: new Float64Array(buf(reply.ids)),
    columns,
  };
}

/** Decode a "preview" reply: one image's uint8 pixels in a buffer, and its row's label. */
export function decodePreview(reply: PreviewReply, buffers: DataView[]): PreviewImage {
  const b = buffers[reply.buffer];
  if (b === undefined) throw new RpcError(`preview reply refers to missing buffer ${reply.buffer}`);
  const size = reply.height * reply.width * reply.channels;
  if (b.byteLength !== size) throw new RpcError(`preview buffer holds ${b.byteLength} bytes; expected ${size}`);
  return {
    row: reply.row,
    column: reply.column,
    label: reply.label,
    height: reply.height,
    width: reply.width,
    channels: reply.channels,
    data: new Uint8Array(copy(b)),
  };
}
