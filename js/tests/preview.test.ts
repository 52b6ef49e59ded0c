// The focused row's image, larger (issue 13): pixels drawn on a canvas, text as text.
import { afterEach, describe, expect, it, vi } from "vitest";
import { fitSize, PREVIEW_BOX, Preview } from "../clients/preview";
import { drawPixels } from "../pixels";
import { decodePreview, RpcError } from "../rpc";
import { EXAMPLES, type PreviewImage, type PreviewReply } from "../types";

/** A 2D context that records what is drawn (jsdom has no canvas). */
function fakeContext() {
  const drawn: Uint8ClampedArray[] = [];
  const ctx = {
    createImageData: (w: number, h: number) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
    putImageData: (img: { data: Uint8ClampedArray }) => drawn.push(img.data),
  };
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockImplementation(() => ctx as never);
  return drawn;
}

function image(extra: Partial<PreviewImage> = {}): PreviewImage {
  return { row: 17, column: "image", label: "3", height: 2, width: 2, channels: 1, data: Uint8Array.from([0, 255, 128, 9]), ...extra };
}

describe("Preview", () => {
  afterEach(() => vi.restoreAllMocks());

  it("is hidden without image columns", () => {
    const p = new Preview();
    document.body.replaceChildren(p.node());
    expect(p.node().style.display).toBe("none");
    p.update({ columns: ["image"] });
    expect(p.node().style.display).toBe("");
    expect(p.node().querySelector(".ww-preview-row")!.textContent).toBe("move the cursor to a row");
  });

  it("draws the pixels on a canvas at their own size, scaled up crisply by CSS", () => {
    const drawn = fakeContext();
    const p = new Preview();
    document.body.replaceChildren(p.node());
    p.update({ columns: ["image"], image: image() });
    const canvas = p.node().querySelector("canvas")!;
    expect([canvas.width, canvas.height]).toEqual([2, 2]);
    expect(canvas.style.width).toBe(`${PREVIEW_BOX}px`); // 2 px -> 56x: a whole multiple
    expect(Array.from(drawn[0]!)).toEqual([0, 0, 0, 255, 255, 255, 255, 255, 128, 128, 128, 255, 9, 9, 9, 255]);
    expect(p.node().querySelector(".ww-preview-row")!.textContent).toBe("row 17");
    expect(p.node().querySelector(".ww-preview-label")!.textContent).toBe("label 3");
    expect(canvas.getAttribute("aria-label")).toBe("image of row 17, label 3");
  });

  it("says when the row is unlabelled, dims while the next row loads, and shows text as text", () => {
    fakeContext();
    const p = new Preview();
    document.body.replaceChildren(p.node());
    p.update({ columns: ["<b>img</b>"], image: image({ label: null, column: "<b>img</b>" }) });
    const label = p.node().querySelector(".ww-preview-label")!;
    expect(label.textContent).toBe("unlabelled");
    expect(label.classList.contains("ww-unlabelled")).toBe(true);
    expect(p.node().querySelector(".ww-preview-column")!.textContent).toBe("<b>img</b> · 2×2");
    expect(p.node().querySelector("b")).toBeNull();
    p.update({ loading: true });
    expect(p.node().classList.contains("ww-preview-loading")).toBe(true);
    p.update({ image: image({ label: "<img src=x onerror=alert(1)>" }), loading: false });
    expect(label.textContent).toBe("label <img src=x onerror=alert(1)>");
    expect(p.node().querySelector("img")).toBeNull();
  });

  it("fits an image into the box: whole multiples when small, scaled down when large", () => {
    expect(fitSize(8, 8)).toEqual([112, 112]);
    expect(fitSize(28, 14)).toEqual([112, 56]);
    expect(fitSize(400, 600)).toEqual([75, 112]);
    expect(fitSize(200, 113)).toEqual([112, 63]);
  });

  it("RGB pixels keep their channels", () => {
    const drawn = fakeContext();
    const canvas = document.createElement("canvas");
    drawPixels(canvas, { height: 1, width: 2, channels: 3, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) });
    expect(Array.from(drawn[0]!)).toEqual([1, 2, 3, 255, 4, 5, 6, 255]);
  });

  it("decodes a preview reply, and refuses a buffer of the wrong size", () => {
    const ex = EXAMPLES.replies.preview!;
    const views = ex.buffers.map((b) => new DataView(Uint8Array.from(b).buffer));
    const img = decodePreview(ex.content as PreviewReply, views);
    expect(img).toMatchObject({ row: 17, column: "image", label: "3", height: 2, width: 2, channels: 1 });
    expect(Array.from(img.data)).toEqual([0, 255, 255, 0]);
    const short = [new DataView(new Uint8Array(3).buffer)];
    expect(() => decodePreview(ex.content as PreviewReply, short)).toThrow(RpcError);
    expect(() => decodePreview(ex.content as PreviewReply, [])).toThrow(/missing buffer 0/);
  });
});
