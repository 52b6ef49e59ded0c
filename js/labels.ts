// Label editing and the focused row's image (issue 13), wired to the model: one picker
// for a label cell and for the toolbar's bulk "Label…" (a label travels as the class's
// text, null for unlabelled, `new: true` only for the picker's explicit "+ add class"),
// and the preview in the side panel, asked for when the cursor's row changes and after
// each revision (its label may have changed). widget.ts hands the callbacks to the table
// and the toolbar; the clients never see each other.
import { type LabelChoice, LabelPicker } from "./clients/picker";
import { Preview } from "./clients/preview";
import type { Rpc } from "./rpc";
import type { Model, OkReply, Request, Target } from "./types";

/** Height of the table (px); taller with images, so the preview fits beside it. */
export const TABLE_HEIGHT = 420;
export const IMAGE_TABLE_HEIGHT = 560;
/** Holding an arrow key asks for one preview, once the cursor rests this long (ms). */
export const PREVIEW_DELAY_MS = 40;

export interface LabelingOptions {
  model: Model;
  rpc: Rpc;
  /** Send an edit; its reply's message (or error) goes to the status band. */
  call: (req: Request) => Promise<OkReply | undefined>;
  onError: (message: string) => void;
}

/** The request fields of a picker's choice. */
export function labelFields(c: LabelChoice): { value: string | null; new?: boolean } {
  if (c.kind === "missing") return { value: null };
  if (c.kind === "new") return { value: c.value, new: true };
  return { value: c.value };
}

export class Labeling {
  readonly picker = new LabelPicker();
  readonly preview = new Preview();
  #opts: LabelingOptions;
  #row: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: LabelingOptions) {
    this.#opts = options;
  }

  /** The table's image columns (the first one is previewed). */
  imageColumns(): string[] {
    return this.#opts.model
      .get("columns")
      .filter((c) => c.kind === "image")
      .map((c) => c.name);
  }

  /** The table's height: taller when there is an image to preview. */
  tableHeight(): number {
    return this.imageColumns().length ? IMAGE_TABLE_HEIGHT : TABLE_HEIGHT;
  }

  /** Table option: open the picker on a row's label cell. */
  pickRow = (row: number, anchor: HTMLElement, current: string | null, key?: string): void => {
    this.picker.open({
      ...this.#classes(),
      anchor,
      current,
      title: `label of row ${row}`,
      initialKey: key,
      onChoose: (c) => void this.#opts.call({ kind: "label", row, ...labelFields(c) }),
    });
  };

  /** Toolbar option: open the picker for the selection or every matching row. */
  pickRows = (target: Target, anchor: HTMLElement, title: string): void => {
    this.picker.open({
      ...this.#classes(),
      anchor,
      title,
      onChoose: (c) => void this.#opts.call({ kind: "bulk_label", target, ...labelFields(c) }),
    });
  };

  /** Table option: the row under the cursor changed; its image follows shortly. */
  focusRow = (row: number | undefined): void => {
    this.#row = row;
    if (!this.imageColumns().length) return;
    this.preview.update({ loading: row !== undefined });
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#fetch(), PREVIEW_DELAY_MS);
  };

  /** Follow the model: which columns are images (the preview shows only with one). */
  sync(): void {
    this.preview.update({ columns: this.imageColumns() });
  }

  /** A new revision: the focused row's label may have changed. */
  refresh(): void {
    if (this.#row !== undefined && this.imageColumns().length) this.#fetch();
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.picker.dispose();
  }

  #classes() {
    const model = this.#opts.model;
    return {
      classes: model.get("classes").map((c) => ({ value: c.value, count: c.count })),
      numeric: model.get("columns").some((c) => c.role === "label" && c.kind === "numeric"),
    };
  }

  #fetch(): void {
    const column = this.imageColumns()[0];
    const row = this.#row;
    if (column === undefined || row === undefined) return;
    this.#opts.rpc.preview(row, column).then(
      (image) => {
        if (row === this.#row) this.preview.update({ image, loading: false }); // else: moved on
      },
      (e: Error) => this.#opts.onError(e.message),
    );
  }
}
