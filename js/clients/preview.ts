// Preview (issue 13): the focused row's image, larger than its thumbnail, so labelling
// by eye is practical. Pixels come from the kernel on request (a binary buffer, like the
// thumbnails) and are drawn on a canvas; the row id and label are text (textContent).
import { drawPixels } from "../pixels";
import type { PreviewImage } from "../types";

export interface PreviewState {
  /** The table's image columns; with none the preview is hidden. */
  columns: readonly string[];
  /** The image shown, or null (no row focused yet). */
  image: PreviewImage | null;
  /** A newer row's image is on its way: the shown one is dimmed. */
  loading: boolean;
}

/** Side of the square the image is fitted into, in CSS pixels. */
export const PREVIEW_BOX = 112;

/** CSS size of an image fitted into the box: whole multiples for small images (crisp pixels). */
export function fitSize(width: number, height: number, box = PREVIEW_BOX): [number, number] {
  const side = Math.max(width, height, 1);
  const scale = side <= box ? Math.max(1, Math.floor(box / side)) : box / side;
  return [Math.round(width * scale), Math.round(height * scale)];
}

export class Preview {
  #root: HTMLDivElement;
  #canvas: HTMLCanvasElement;
  #row: HTMLDivElement;
  #label: HTMLDivElement;
  #column: HTMLDivElement;
  #state: PreviewState = { columns: [], image: null, loading: false };

  constructor() {
    this.#root = document.createElement("div");
    this.#root.className = "ww-preview";
    const title = document.createElement("div");
    title.className = "ww-panel-title";
    title.textContent = "Focused row";
    const body = document.createElement("div");
    body.className = "ww-preview-body";
    const frame = document.createElement("div");
    frame.className = "ww-preview-frame";
    this.#canvas = document.createElement("canvas");
    this.#canvas.className = "ww-preview-img";
    this.#canvas.setAttribute("role", "img");
    frame.append(this.#canvas);
    const meta = document.createElement("div");
    meta.className = "ww-preview-meta";
    this.#row = document.createElement("div");
    this.#row.className = "ww-preview-row";
    this.#label = document.createElement("div");
    this.#label.className = "ww-preview-label";
    this.#column = document.createElement("div");
    this.#column.className = "ww-preview-column";
    meta.append(this.#row, this.#label, this.#column);
    body.append(frame, meta);
    this.#root.append(title, body);
    this.#render();
  }

  node(): HTMLElement {
    return this.#root;
  }

  update(next: Partial<PreviewState>): void {
    const drawn = this.#state.image;
    this.#state = { ...this.#state, ...next };
    if (next.image !== undefined && next.image !== drawn && next.image !== null) drawPixels(this.#canvas, next.image);
    this.#render();
  }

  #render(): void {
    const { columns, image, loading } = this.#state;
    this.#root.style.display = columns.length ? "" : "none";
    this.#root.classList.toggle("ww-preview-loading", loading);
    this.#canvas.style.visibility = image ? "visible" : "hidden";
    if (!image) {
      this.#row.textContent = "move the cursor to a row";
      this.#label.textContent = "";
      this.#column.textContent = "";
      this.#canvas.removeAttribute("aria-label");
      return;
    }
    const [w, h] = fitSize(image.width, image.height);
    this.#canvas.style.width = `${w}px`;
    this.#canvas.style.height = `${h}px`;
    this.#row.textContent = `row ${image.row}`;
    this.#label.textContent = image.label === null ? "unlabelled" : `label ${image.label}`;
    this.#label.classList.toggle("ww-unlabelled", image.label === null);
    this.#column.textContent = `${image.column} · ${image.width}×${image.height}`;
    this.#canvas.setAttribute(
      "aria-label",
      `${image.column} of row ${image.row}, ${image.label === null ? "unlabelled" : `label ${image.label}`}`,
    );
  }
}
