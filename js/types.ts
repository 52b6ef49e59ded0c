// Shapes of the page: the page-kernel contract comes from protocol.gen.ts (generated
// from weightwidget/_protocol.py, never edited by hand); the decoded forms of a page of
// rows and the model interface are the page's own.
import type { Traits } from "./protocol.gen";

export type {
  BrushReply,
  BulkAction,
  ClassInfo,
  ColumnMeta,
  ColumnSummary,
  ErrorReply,
  FilterErrorInfo,
  HistogramSummary,
  HistoryRow,
  OkReply,
  PageTrait,
  Replies,
  Request,
  RequestKind,
  RowsReply,
  RunHeadline,
  RunInfo,
  SummariesReply,
  Summary,
  Suggestion,
  SuggestionAction,
  SuggestionKind,
  SuggestionsReply,
  Target,
  Traits,
  ValuesSummary,
  WireColumn,
} from "./protocol.gen";
export { EXAMPLES, LIMITS, PAGE_TRAITS } from "./protocol.gen";

export type ColumnKind = "numeric" | "bool" | "string" | "image";

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
