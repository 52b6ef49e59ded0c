import { describe, expect, it } from "vitest";
import { Histogram } from "../clients/histogram";
import type { ClassInfo } from "../types";

const classes: ClassInfo[] = [
  { value: "0", count: 750, weight_sum: 250, share: 0.75, effective_share: 0.5, filter: "label == 0" },
  { value: "<b>1</b>", count: 250, weight_sum: 250, share: 0.25, effective_share: 0.5, filter: 'label == "<b>1</b>"' },
];

function make() {
  const filters: string[] = [];
  const h = new Histogram({ onFilter: (f) => filters.push(f) });
  document.body.replaceChildren(h.node());
  h.update({ classes, filter: "", label: "label" });
  return { h, filters };
}

describe("Histogram", () => {
  it("draws raw and effective bars side by side, scaled to the largest share", () => {
    make();
    const rows = document.querySelectorAll<HTMLElement>(".ww-class");
    expect(rows.length).toBe(2);
    const widths = (r: HTMLElement) => Array.from(r.querySelectorAll<HTMLElement>(".ww-bar"), (b) => b.style.width);
    expect(widths(rows[0]!)).toEqual(["100%", "66.66666666666666%"]);
    expect(widths(rows[1]!)).toEqual(["33.33333333333333%", "66.66666666666666%"]);
    expect(rows[0]!.querySelector(".ww-class-nums")!.textContent).toBe("75.0% → 50.0%");
    expect(rows[0]!.title).toContain("750 rows (75.0%)");
  });

  it("shows class values as text", () => {
    make();
    expect(document.querySelectorAll(".ww-class-name")[1]!.textContent).toBe("<b>1</b>");
    expect(document.querySelector(".ww-class b")).toBeNull();
  });

  it("titles the panel with the label column and the class count", () => {
    make();
    expect(document.querySelector(".ww-panel-title")!.textContent).toBe("Classes of label (2)");
    expect(document.querySelector(".ww-summary")).toBeNull(); // the summary is in the status band
  });

  it("click filters to a class; clicking the active class clears the filter", () => {
    const { h, filters } = make();
    document.querySelectorAll<HTMLElement>(".ww-class")[1]!.click();
    expect(filters).toEqual(['label == "<b>1</b>"']);
    h.update({ filter: 'label == "<b>1</b>"' });
    const active = document.querySelectorAll<HTMLElement>(".ww-class")[1]!;
    expect(active.classList.contains("ww-active")).toBe(true);
    active.click();
    expect(filters).toEqual(['label == "<b>1</b>"', ""]);
    active.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(filters.at(-1)).toBe("");
  });

  it("handles all weights zero without dividing by zero", () => {
    const { h } = make();
    h.update({ classes: classes.map((c) => ({ ...c, effective_share: 0, weight_sum: 0 })) });
    const bars = document.querySelectorAll<HTMLElement>(".ww-bars .ww-bar-eff");
    expect(Array.from(bars, (b) => b.style.width)).toEqual(["0%", "0%"]);
  });
});
