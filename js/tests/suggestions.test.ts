import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { formatHeadline, History } from "../clients/history";
import { DEFAULT_FACTOR, Suggestions } from "../clients/suggestions";
import type { RunInfo, Suggestion, SuggestionAction, Target } from "../types";
import widget from "../widget";
import { createFakeModel, type FakeModel, rowsReply } from "./fake_model";

const flush = () => new Promise((r) => setTimeout(r, 0));

function line(over: Partial<Suggestion> & Pick<Suggestion, "key" | "kind">): Suggestion {
  return {
    run: null,
    title: over.kind,
    count: 10,
    filter: `${over.key} filter`,
    sort_by: null,
    ascending: true,
    actions: [],
    detail: "what it counts",
    ...over,
  };
}

const ITEMS: Suggestion[] = [
  line({
    key: "label_issues:r3",
    kind: "label_issues",
    run: "r3",
    title: "label issues",
    count: 412,
    filter: "r3_label_issue and weight > 0",
    sort_by: "r3_label_quality",
    actions: ["exclude", "scale", "relabel"],
  }),
  line({ key: "hardest:<b>m</b>", kind: "hardest", run: "<b>m</b>", title: "<img src=x onerror=alert(1)>", count: 0 }),
  line({ key: "label_next", kind: "label_next", title: "unlabelled: label next", count: 1200, filter: "label is missing" }),
  line({ key: "excluded", kind: "excluded", title: "excluded rows", count: 3, filter: "weight == 0", actions: ["include"] }),
];

function make(state: Partial<{ filter: string; matched: number; selectedCount: number; selectAll: boolean }> = {}) {
  const calls: { show: Suggestion[]; clear: number; actions: [string, SuggestionAction, Target, number?][]; errors: string[] } = {
    show: [],
    clear: 0,
    actions: [],
    errors: [],
  };
  const s = new Suggestions({
    onShow: (item) => calls.show.push(item),
    onClear: () => (calls.clear += 1),
    onAction: (key, action, target, value) => calls.actions.push(value === undefined ? [key, action, target] : [key, action, target, value]),
    onError: (m) => calls.errors.push(m),
  });
  document.body.replaceChildren(s.node());
  s.update({ items: ITEMS, filter: "", matched: 5000, selectedCount: 0, selectAll: false, ...state });
  const lines = () => Array.from(document.querySelectorAll<HTMLElement>(".ww-suggestion"));
  const bar = () => document.querySelector<HTMLElement>(".ww-suggest-actions");
  return { s, calls, lines, bar };
}

describe("Suggestions panel", () => {
  it("lists one line per kind with its count, as text", () => {
    const { lines } = make();
    expect(lines().map((l) => [l.querySelector(".ww-suggest-title")!.textContent, l.querySelector(".ww-suggest-run")!.textContent, l.querySelector(".ww-suggest-count")!.textContent])).toEqual([
      ["label issues", "r3", "412"],
      ["<img src=x onerror=alert(1)>", "<b>m</b>", "0"],
      ["unlabelled: label next", "", "1,200"],
      ["excluded rows", "", "3"],
    ]);
    expect(document.querySelector(".ww-suggest img, .ww-suggest b")).toBeNull(); // markup stays text
    expect(lines()[0]!.title).toContain("filter: r3_label_issue and weight > 0");
    expect(lines()[0]!.title).toContain("sorted by r3_label_quality ascending");
    expect(document.querySelector(".ww-suggest-hint")!.textContent).toBe("");
  });

  it("a click shows a line's rows; a click on the shown line shows every row", () => {
    const { s, calls, lines } = make();
    lines()[0]!.click();
    expect(calls.show.map((i) => i.key)).toEqual(["label_issues:r3"]);
    s.update({ filter: "r3_label_issue and weight > 0", matched: 412 });
    expect(lines()[0]!.classList.contains("ww-active")).toBe(true);
    expect(s.shown?.key).toBe("label_issues:r3");
    lines()[0]!.click();
    expect(calls.clear).toBe(1);
    lines()[2]!.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(calls.show.map((i) => i.key)).toEqual(["label_issues:r3", "label_next"]);
  });

  it("a line with no rows cannot be clicked, unless it is the shown one", () => {
    const { s, calls, lines } = make();
    const empty = lines()[1]!;
    expect(empty.classList.contains("ww-none")).toBe(true);
    expect(empty.getAttribute("aria-disabled")).toBe("true");
    empty.click();
    expect(calls.show).toEqual([]);
    s.update({ filter: ITEMS[1]!.filter, matched: 0 }); // shown, then emptied by an edit
    lines()[1]!.click();
    expect(calls.clear).toBe(1);
  });

  it("shows the actions the shown line offers, under it, on the shown or selected rows", () => {
    const { s, calls, lines, bar } = make();
    expect(bar()).toBeNull();
    s.update({ filter: "r3_label_issue and weight > 0", matched: 412 });
    expect(lines()[0]!.nextElementSibling).toBe(bar());
    const visible = Array.from(bar()!.querySelectorAll<HTMLButtonElement>(".ww-btn")).filter((b) => b.style.display !== "none");
    expect(visible.map((b) => b.textContent)).toEqual(["Relabel", "Exclude", "Down-weight ×"]);
    const target = bar()!.querySelector<HTMLSelectElement>(".ww-suggest-target")!;
    expect(Array.from(target.options, (o) => [o.textContent, o.disabled])).toEqual([
      ["shown (412)", false],
      ["selected (0)", true],
    ]);
    bar()!.querySelector<HTMLButtonElement>(".ww-suggest-exclude")!.click();
    expect(calls.actions).toEqual([["label_issues:r3", "exclude", "matched"]]);
    // a selection appears: actions go to it by default
    s.update({ selectedCount: 12 });
    expect(target.value).toBe("selection");
    expect(target.options[1]!.textContent).toBe("selected (12)");
    bar()!.querySelector<HTMLButtonElement>(".ww-suggest-relabel")!.click();
    expect(calls.actions.at(-1)).toEqual(["label_issues:r3", "relabel", "selection"]);
    // the excluded line offers include only
    s.update({ filter: "weight == 0", matched: 3, selectedCount: 0 });
    expect(lines()[3]!.nextElementSibling).toBe(bar());
    const shown = Array.from(bar()!.querySelectorAll<HTMLButtonElement>(".ww-btn")).filter((b) => b.style.display !== "none");
    expect(shown.map((b) => b.textContent)).toEqual(["Include"]);
    // a line without actions (label next) has no bar
    s.update({ filter: "label is missing", matched: 1200 });
    expect(bar()).toBeNull();
  });

  it("down-weight sends the typed factor; a bad factor is refused on the page", () => {
    const { s, calls, bar } = make();
    s.update({ filter: "r3_label_issue and weight > 0", matched: 412 });
    const factor = bar()!.querySelector<HTMLInputElement>(".ww-suggest-factor")!;
    expect(factor.value).toBe(DEFAULT_FACTOR);
    bar()!.querySelector<HTMLButtonElement>(".ww-suggest-scale")!.click();
    expect(calls.actions).toEqual([["label_issues:r3", "scale", "matched", 0.5]]);
    factor.value = "-2";
    bar()!.querySelector<HTMLButtonElement>(".ww-suggest-scale")!.click();
    expect(calls.actions.length).toBe(1);
    expect(factor.classList.contains("ww-invalid")).toBe(true);
    expect(calls.errors[0]).toContain(">= 0");
    factor.value = "0.25";
    factor.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(calls.actions.at(-1)).toEqual(["label_issues:r3", "scale", "matched", 0.25]);
    // the typed factor survives new counts
    s.update({ items: ITEMS.map((i) => ({ ...i, count: i.count + 1 })) });
    expect(bar()!.querySelector<HTMLInputElement>(".ww-suggest-factor")!.value).toBe("0.25");
  });

  it("says how to get suggestions when no run wrote any", () => {
    const { s } = make();
    s.update({ items: [ITEMS[3]!] });
    const hint = document.querySelector<HTMLElement>(".ww-suggest-hint")!;
    expect(hint.textContent).toBe("Runs of find_label_issues and collect_metrics add lines here.");
    expect(hint.title).toContain("ww.find_label_issues(t, pred_probs, run=…)");
    s.update({ items: null });
    expect(document.querySelector(".ww-suggest-hint")!.textContent).toBe("counting…");
  });
});

const RUNS: RunInfo[] = [
  {
    run: "m1",
    revision: 0,
    committed: 1,
    created: "2026-01-01T12:00:00+00:00",
    kind: "metrics",
    columns: ["m1_loss"],
    headline: [
      { name: "accuracy", value: 0.8861, unit: "share" },
      { name: "loss", value: 0.46123, unit: "number" },
    ],
  },
  {
    run: "<b>r1</b>",
    revision: 2,
    committed: 3,
    created: "2026-01-01T12:01:00+00:00",
    kind: "label_issues",
    columns: ["r1_label_issue"],
    headline: [
      { name: "flagged", value: 1229, unit: "count" },
      { name: "fraction", value: null, unit: "share" },
    ],
  },
];

describe("History with runs", () => {
  const rev = (revision: number) => ({ revision, parent: revision ? revision - 1 : null, created: "2026-01-01T12:00:00+00:00", author: "a", message: `edit ${revision}`, rows_changed: 1 });

  it("puts each run just above the revision it was computed at, with its headline", () => {
    const h = new History({ onRevert: () => {} });
    document.body.replaceChildren(h.node());
    h.update({ history: [1, 2, 3, 4].map(rev), revision: 4, runs: RUNS });
    const items = Array.from(document.querySelectorAll<HTMLElement>(".ww-revs > li"));
    expect(items.map((li) => (li.classList.contains("ww-run") ? `run ${li.dataset.run}` : `r${li.dataset.revision}`))).toEqual([
      "r4",
      "r3",
      "run <b>r1</b>",
      "r2",
      "r1",
      "run m1", // computed at r0, older than every listed revision: at the end
    ]);
    const r1 = items[2]!;
    expect(r1.querySelector(".ww-run-name")!.textContent).toBe("<b>r1</b> · label issues · at r2");
    expect(r1.querySelector(".ww-run-meta")!.textContent).toBe("flagged 1,229 · fraction –");
    expect(r1.querySelector("b")).toBeNull();
    expect(r1.title).toContain("computed at revision r2, columns added in r3");
    expect(items[5]!.querySelector(".ww-run-meta")!.textContent).toBe("accuracy 88.6% · loss 0.4612");
  });

  it("formats headlines by unit", () => {
    expect(formatHeadline({ name: "accuracy", value: 0.5, unit: "share" })).toBe("accuracy 50.0%");
    expect(formatHeadline({ name: "rows", value: 12345, unit: "count" })).toBe("rows 12,345");
    expect(formatHeadline({ name: "loss", value: null, unit: "number" })).toBe("loss –");
  });
});

/** Answer "rows" and "suggestions" requests like the kernel would. */
function kernel(model: FakeModel, items: () => Suggestion[]) {
  const send = model.send.bind(model);
  model.send = (content: any, cb?: unknown, bufs?: any) => {
    send(content, cb, bufs);
    if (content.kind === "rows") {
      const { content: c, buffers } = rowsReply(content.id, content.start, content.count, model.get("view"));
      queueMicrotask(() => model.reply(c, buffers));
    } else if (content.kind === "suggestions") {
      queueMicrotask(() => model.reply({ id: content.id, kind: "suggestions", revision: model.get("revision"), items: items() }));
    }
  };
}

describe("the widget wires the panel", () => {
  beforeEach(() => {
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => setTimeout(() => cb(0), 0));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("asks for counts after the first rows and after each revision; a click sets filter and sort", async () => {
    const model = createFakeModel({ runs: RUNS });
    let items = ITEMS;
    kernel(model, () => items);
    const el = document.createElement("div");
    document.body.replaceChildren(el);
    const cleanup = widget.render({ model, el });
    const asked = () => model.sent.filter((m) => m.content.kind === "suggestions").length;
    const kinds = model.sent.map((m) => m.content.kind);
    expect(kinds[0]).toBe("rows"); // the first page goes first
    for (let i = 0; i < 5; i++) await flush();
    expect(asked()).toBe(1);
    const count = () => el.querySelector(".ww-suggestion .ww-suggest-count")!.textContent;
    expect(count()).toBe("412");
    expect(el.querySelector(".ww-side")!.firstElementChild!.classList.contains("ww-suggest")).toBe(true);
    expect(el.querySelectorAll(".ww-run").length).toBe(2);

    el.querySelector<HTMLElement>(".ww-suggestion")!.click();
    expect([model.get("filter"), model.get("sort_by"), model.get("sort_ascending")]).toEqual(["r3_label_issue and weight > 0", "r3_label_quality", true]);
    model.set("matched", 412);
    el.querySelector<HTMLButtonElement>(".ww-suggest-exclude")!.click();
    expect(model.sent.at(-1)!.content).toMatchObject({ kind: "suggestion_action", key: "label_issues:r3", action: "exclude", target: "matched" });

    // the kernel commits a revision: the panel asks again and shows the new counts
    items = ITEMS.map((i) => (i.key === "label_issues:r3" ? { ...i, count: 0 } : i));
    model.set("revision", 1);
    for (let i = 0; i < 5; i++) await flush();
    expect(asked()).toBe(2);
    expect(count()).toBe("0");
    cleanup();
  });
});
