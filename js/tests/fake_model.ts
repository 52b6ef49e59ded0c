// A stand-in for anywidget's model (get/set/on/off/save_changes/send), as in
// ../shared/e2e/pytest/harness/fake_model.js, typed and with a kernel stub.
import { EXAMPLES, type Model, type Traits } from "../types";

export interface FakeModel extends Model {
  sent: { content: any; buffers?: unknown }[];
  saves: number;
  state: Record<string, unknown>;
  emit(event: string, ...args: unknown[]): void;
  reply(content: unknown, buffers?: unknown[]): void;
}

/** The contract's example traits, adjusted to a plain 1,000-row table in dataset order. */
export function defaultTraits(): Traits {
  const ex = structuredClone(EXAMPLES.traits);
  return {
    ...ex,
    filter: "",
    sort_by: null,
    sort_ascending: true,
    selected: [],
    view: 1,
    revision: 0,
    columns: [
      { name: "row", kind: "numeric", role: "row" },
      { name: "label", kind: "numeric", role: "label" },
      { name: "weight", kind: "numeric", role: "weight" },
      { name: "caption", kind: "string", role: "data" },
    ],
    classes: [],
    summary: { rows: 1000, included: 1000, weight_sum: 1000, ess: 1000 },
    history: [],
    filter_error: null,
  };
}

export function createFakeModel(initial: Partial<Traits> = {}): FakeModel {
  const state: Record<string, unknown> = { ...defaultTraits(), ...initial };
  const listeners = new Map<string, Set<(...a: any[]) => void>>();
  const model: FakeModel = {
    sent: [],
    saves: 0,
    state,
    get: (name) => state[name] as any,
    set(name, value) {
      const old = state[name];
      state[name] = value;
      if (old !== value) model.emit(`change:${name}`, value);
    },
    on(event, cb) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event)!.add(cb);
    },
    off(event, cb) {
      if (!event) return listeners.clear();
      if (!cb) return void listeners.delete(event);
      listeners.get(event)?.delete(cb);
    },
    save_changes() {
      model.saves += 1;
    },
    send(content, _callbacks, buffers) {
      model.sent.push({ content, buffers });
    },
    emit(event, ...args) {
      for (const cb of listeners.get(event) ?? []) cb(...args);
    },
    reply(content, buffers = []) {
      model.emit("msg:custom", content, buffers);
    },
  };
  return model;
}

/** A "rows" reply as the kernel encodes it: row ids, label, weight as float64; captions as text. */
export function rowsReply(id: number, start: number, count: number, view = 1, total = 1000) {
  const ids = Float64Array.from({ length: count }, (_, i) => start + i);
  const labels = Float64Array.from({ length: count }, (_, i) => (start + i) % 3);
  const weights = Float64Array.from({ length: count }, () => 1);
  const content = {
    id,
    kind: "rows",
    view,
    start,
    count,
    total,
    ids: 0,
    columns: [
      { name: "row", kind: "numeric", buffer: 0, dtype: "float64" },
      { name: "label", kind: "numeric", buffer: 1, dtype: "float64" },
      { name: "weight", kind: "numeric", buffer: 2, dtype: "float64" },
      {
        name: "caption",
        kind: "string",
        values: Array.from({ length: count }, (_, i) => (start + i === 0 ? "<img src=x onerror=alert(1)>" : `c${start + i}`)),
      },
    ],
  };
  return { content, buffers: [ids, labels, weights].map((a) => new DataView(a.buffer)) };
}
