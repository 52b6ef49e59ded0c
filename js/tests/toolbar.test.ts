import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Toolbar } from "../clients/toolbar";

function make() {
  const calls = { filter: [] as string[], bulk: [] as unknown[][], other: [] as string[] };
  const tb = new Toolbar({
    onFilter: (t) => calls.filter.push(t),
    onBulk: (...a) => calls.bulk.push(a),
    onSelectAll: () => calls.other.push("all"),
    onClearSelection: () => calls.other.push("clear"),
    onUndo: () => calls.other.push("undo"),
    onRedo: () => calls.other.push("redo"),
    debounceMs: 300,
  });
  document.body.replaceChildren(tb.node());
  tb.update({ matched: 1000, total: 1000 });
  return { tb, calls };
}

const type = (input: HTMLInputElement, text: string) => {
  input.value = text;
  input.dispatchEvent(new Event("input"));
};

describe("Toolbar", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("debounces typing into one filter change; Enter sends at once", () => {
    const { tb, calls } = make();
    type(tb.input, "l");
    type(tb.input, "label");
    type(tb.input, "label == 3");
    vi.advanceTimersByTime(299);
    expect(calls.filter).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls.filter).toEqual(["label == 3"]);
    type(tb.input, "label == 4");
    tb.input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(calls.filter).toEqual(["label == 3", "label == 4"]);
    vi.advanceTimersByTime(1000);
    expect(calls.filter.length).toBe(2);
  });

  it("shows a filter error inline with its position, and the filter still in use", () => {
    const { tb } = make();
    tb.update({ filter: "label == 3" });
    type(tb.input, "label == 3 and lable > 2");
    vi.advanceTimersByTime(300);
    tb.update({ filterError: { text: "label == 3 and lable > 2", message: "unknown column 'lable'", position: 15 } });
    tb.update({ filter: "label == 3" }); // the kernel re-sends the last good filter
    const err = document.querySelector<HTMLElement>(".ww-filter-error")!;
    expect(err.style.display).toBe("");
    expect(err.textContent).toContain("unknown column 'lable' at position 15");
    expect(err.querySelector("mark")!.textContent).toBe("l");
    expect(err.textContent).toContain("still showing: label == 3");
    expect(tb.input.value).toBe("label == 3 and lable > 2"); // the user's text stays
    expect(tb.input.classList.contains("ww-invalid")).toBe(true);
    type(tb.input, "label == 3 and label > 2"); // edited: the old error no longer applies
    expect(tb.input.classList.contains("ww-invalid")).toBe(true); // until re-rendered
    tb.update({});
    expect(err.style.display).toBe("none");
  });

  it("a filter set from Python replaces the box's text", () => {
    const { tb } = make();
    tb.update({ filter: "loss > 2" });
    expect(tb.input.value).toBe("loss > 2");
  });

  it("counts and the target follow the selection", () => {
    const { tb } = make();
    const counts = document.querySelector(".ww-counts")!;
    const target = document.querySelector<HTMLSelectElement>(".ww-target")!;
    expect(counts.textContent).toBe("1,000 of 1,000 rows match");
    expect(target.value).toBe("matched");
    expect(target.options[0]!.disabled).toBe(true);
    tb.update({ selectedCount: 3 });
    expect(counts.textContent).toBe("1,000 of 1,000 rows match · 3 selected");
    expect(target.value).toBe("selection");
    tb.update({ selectedCount: 0, selectAll: true, matched: 40 });
    expect(counts.textContent).toBe("40 of 1,000 rows match · 40 selected");
    expect(target.options[0]!.textContent).toBe("selection (40)");
  });

  it("bulk buttons send action, target and value; a bad value is refused", () => {
    const { tb, calls } = make();
    tb.update({ selectedCount: 2 });
    const value = document.querySelector<HTMLInputElement>(".ww-value")!;
    const click = (cls: string) => document.querySelector<HTMLButtonElement>(cls)!.click();
    value.value = "2.5";
    click(".ww-set");
    click(".ww-scale");
    click(".ww-exclude");
    click(".ww-include");
    click(".ww-balance");
    value.value = "-1";
    click(".ww-set");
    value.value = "nan";
    click(".ww-scale");
    expect(calls.bulk).toEqual([
      ["set", "selection", 2.5],
      ["scale", "selection", 2.5],
      ["exclude", "selection"],
      ["include", "selection"],
      ["balance", "selection"],
    ]);
    expect(value.classList.contains("ww-invalid")).toBe(true);
    expect(document.querySelector(".ww-status")!.textContent).toMatch(/not a number/);
    document.querySelector<HTMLSelectElement>(".ww-target")!.value = "matched";
    click(".ww-exclude");
    expect(calls.bulk.at(-1)).toEqual(["exclude", "matched"]);
  });

  it("undo, redo, select all, clear; busy and status states", () => {
    const { tb, calls } = make();
    for (const cls of [".ww-undo", ".ww-redo"]) document.querySelector<HTMLButtonElement>(cls)!.click();
    const buttons = Array.from(document.querySelectorAll<HTMLButtonElement>("button"));
    buttons.find((b) => b.textContent === "Select all matching")!.click();
    tb.update({ selectedCount: 1 });
    buttons.find((b) => b.textContent === "Clear")!.click();
    expect(calls.other).toEqual(["undo", "redo", "all", "clear"]);
    tb.update({ canUndo: false, canRedo: true });
    expect(document.querySelector<HTMLButtonElement>(".ww-undo")!.disabled).toBe(true);
    expect(document.querySelector<HTMLButtonElement>(".ww-redo")!.disabled).toBe(false);
    const busy = document.querySelector<HTMLElement>(".ww-busy")!;
    expect(busy.style.visibility).toBe("hidden");
    tb.update({ busy: true });
    expect(busy.style.visibility).toBe("visible");
    tb.update({ status: { text: "<b>nothing to undo</b>", kind: "error" } });
    const status = document.querySelector(".ww-status")!;
    expect(status.textContent).toBe("<b>nothing to undo</b>");
    expect(status.querySelector("b")).toBeNull();
    expect(status.classList.contains("ww-status-error")).toBe(true);
  });

  it("the status band shows the summary, then the last message; never an empty strip", () => {
    const { tb } = make();
    const band = document.querySelector<HTMLElement>(".ww-status")!;
    expect(band.style.display).toBe("none"); // nothing to report yet: no strip at all
    tb.update({ summary: { rows: 1_000_000, matched: 412, included: 999_990, ess: 998_765.4, revision: 6 } });
    expect(band.style.display).toBe("");
    expect(band.querySelector(".ww-summary")!.textContent).toBe(
      "rows 1,000,000matched 412included 999,990effective sample size 998,765r6",
    );
    expect(band.querySelector(".ww-message")!.textContent).toBe("");
    tb.update({ status: { text: "r7: exclude 3 rows selected", kind: "info" } });
    expect(band.querySelector(".ww-message")!.textContent).toBe("r7: exclude 3 rows selected");
    expect(band.classList.contains("ww-status-error")).toBe(false);
  });

  it("the apply menu shows how many visible rows a selection action changes", () => {
    const { tb } = make();
    const target = document.querySelector<HTMLSelectElement>(".ww-target")!;
    tb.update({ matched: 40, selectedCount: 3 });
    expect(target.options[0]!.textContent).toBe("selection (3)");
    expect(target.value).toBe("selection");
    tb.update({ selectedCount: 0 });
    expect(target.options[0]!.disabled).toBe(true);
    expect(target.value).toBe("matched");
  });
});
