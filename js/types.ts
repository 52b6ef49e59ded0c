// Shapes shared by the page code: the synced traits (mirroring weightwidget/widget.py)
// and the custom messages exchanged with the kernel (see rpc.ts).

export type ColumnKind = "numeric" | "bool" | "string" | "image";

/** One displayed column, as listed in the `columns` trait. */
export interface ColumnMeta {
  name: string;
  kind: ColumnKind;
  /** Pseudo columns: "row" (row id) and "weight" (current weight). */
  role: "row" | "weight" | "label" | "data";
}

/** One class of the label column, as listed in the `classes` trait. */
export interface ClassInfo {
  value: string;
  count: number;
  weight_sum: number;
  share: number;
  effective_share: number;
  /** The filter text selecting this class (built by the kernel, quoted safely). */
  filter: string;
}

export interface Summary {
  rows: number;
  included: number;
  weight_sum: number;
  ess: number;
}

export interface HistoryRow {
  revision: number;
  parent: number | null;
  created: string;
  author: string;
  message: string;
  rows_changed: number;
}

export interface FilterErrorInfo {
  text: string;
  message: string;
  position: number;
}

/** The synced traits. */
export interface Traits {
  filter: string;
  sort_by: string | null;
  sort_ascending: boolean;
  selected: number[];
  select_all: boolean;
  matched: number;
  revision: number;
  view: number;
  n_rows: number;
  label: string;
  columns: ColumnMeta[];
  classes: ClassInfo[];
  summary: Summary;
  history: HistoryRow[];
  can_undo: boolean;
  can_redo: boolean;
  filter_error: FilterErrorInfo | null;
  error: string;
}

type Callback = (...args: any[]) => void;

/** The subset of anywidget's model interface this widget uses. */
export interface Model {
  get<K extends keyof Traits>(name: K): Traits[K];
  set<K extends keyof Traits>(name: K, value: Traits[K]): void;
  save_changes(): void;
  on(event: string, cb: Callback): void;
  off(event?: string | null, cb?: Callback | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

// ----------------------------------------------------------------- messages

export type BulkAction = "set" | "scale" | "exclude" | "include" | "balance";
export type Target = "selection" | "matched";

export type Request =
  | { kind: "rows"; start: number; count: number }
  | { kind: "edit"; row: number; value: number }
  | { kind: "bulk"; action: BulkAction; target: Target; value?: number }
  | { kind: "select_range"; start: number; stop: number; add: boolean }
  | { kind: "undo" }
  | { kind: "redo" }
  | { kind: "revert"; revision: number }
  | { kind: "ping" };

/** Column data of a page as sent by the kernel (meta in JSON, arrays in buffers). */
export type WireColumn =
  | { name: string; kind: "numeric" | "bool"; buffer: number; dtype: "float64" | "uint8" }
  | { name: string; kind: "string"; values: (string | null)[] }
  | { name: string; kind: "image"; buffer: number; height: number; width: number; channels: number };

export interface RowsReply {
  id: number;
  kind: "rows";
  view: number;
  start: number;
  count: number;
  total: number;
  ids: number; // buffer index of the float64 row ids
  columns: WireColumn[];
}

export interface OkReply {
  id: number;
  ok: true;
  revision?: number;
  rows?: number;
  message?: string;
}

export interface ErrorReply {
  id: number;
  error: string;
}

/** Decoded column of a page. */
export type ColumnData =
  | { kind: "numeric"; values: Float64Array }
  | { kind: "bool"; values: Uint8Array }
  | { kind: "string"; values: (string | null)[] }
  | { kind: "image"; height: number; width: number; channels: number; data: Uint8Array };

/** A decoded page of rows: positions start..start+count of the current view. */
export interface Page {
  view: number;
  start: number;
  count: number;
  total: number;
  ids: Float64Array;
  columns: Map<string, ColumnData>;
}
