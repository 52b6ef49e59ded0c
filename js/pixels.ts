// Pixels on a canvas: thumbnails in the table and the preview of the focused row's image
// (uint8 grayscale or RGB from the kernel, drawn via ImageData: pixels only, never markup).

/** Images as the kernel sends them: `count` images of height x width x channels uint8. */
export interface Pixels {
  height: number;
  width: number;
  channels: number;
  data: Uint8Array;
}

/** Draw image `i` of `data` on a canvas at its own size (CSS scales it, pixelated). */
export function drawPixels(canvas: HTMLCanvasElement, data: Pixels, i = 0): void {
  const { height: h, width: w, channels: ch } = data;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext?.("2d");
  if (!ctx) return; // jsdom has no canvas
  const img = ctx.createImageData(w, h);
  const src = data.data.subarray(i * h * w * ch, (i + 1) * h * w * ch);
  for (let p = 0; p < h * w; p++) {
    const r = src[p * ch]!;
    img.data[p * 4] = r;
    img.data[p * 4 + 1] = ch >= 3 ? src[p * ch + 1]! : r;
    img.data[p * 4 + 2] = ch >= 3 ? src[p * ch + 2]! : r;
    img.data[p * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
