// The label picker (issue 13): keyboard first, text only, new classes only when asked.
import { beforeEach, describe, expect, it } from "vitest";
import {
  digitMode,
  GRID_MAX,
  type LabelChoice,
  LabelPicker,
  MAX_SHOWN,
  narrow,
  newClass,
  type PickerRequest,
  sameLabel,
} from "../clients/picker";

const DIGITS = Array.from({ length: 10 }, (_, i) => ({ value: String(i), count: 100 + i }));
const ANIMALS = ["cat", "dog", "<img src=x onerror=alert(1)>", "bird"].map((value, i) => ({ value, count: i + 1 }));

function setup(req: Partial<PickerRequest> = {}) {
  const root = document.createElement("div");
  const anchor = document.createElement("button");
  anchor.textContent = "anchor";
  root.append(anchor);
  document.body.replaceChildren(root);
  const picker = new LabelPicker();
  root.append(picker.node());
  anchor.focus();
  const chosen: LabelChoice[] = [];
  let cancelled = 0;
  picker.open({
    anchor,
    classes: DIGITS,
    title: "label of row 17",
    onChoose: (c) => chosen.push(c),
    onCancel: () => cancelled++,
    ...req,
  });
  const search = picker.node().querySelector<HTMLInputElement>(".ww-picker-search")!;
  const key = (k: string, init: KeyboardEventInit = {}) => {
    const e = new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...init });
    search.dispatchEvent(e);
    return e;
  };
  const type = (text: string) => {
    for (const ch of text) {
      if (!key(ch).defaultPrevented) {
        search.value += ch;
        search.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }
  };
  const active = () => picker.node().querySelector(".ww-pick-active .ww-pick-name")?.textContent ?? null;
  return { picker, anchor, search, chosen, key, type, active, cancelled: () => cancelled };
}

describe("pure helpers", () => {
  it("digit mode: by value for single digits, by index for few non-numeric classes", () => {
    expect(digitMode(["0", "1", "2", "9"])).toBe("value");
    expect(digitMode(["cat", "dog"])).toBe("index");
    expect(digitMode(Array.from({ length: 11 }, (_, i) => `c${i}`))).toBe("none");
    expect(digitMode(["10", "20"])).toBe("none"); // digits must narrow "20"
    expect(digitMode(["-1", "1"])).toBe("none");
    expect(digitMode([])).toBe("none");
  });

  it("narrow: prefix matches first, then the others containing the text, case-insensitive", () => {
    const v = ["Dog", "cat", "hotdog", "bird", "doge"];
    expect(narrow(v, "do")).toEqual([0, 4, 2]);
    expect(narrow(v, "  ")).toEqual([0, 1, 2, 3, 4]);
    expect(narrow(v, "zz")).toEqual([]);
  });

  it("newClass strips the + that starts a new class; sameLabel compares numbers and bools", () => {
    expect(newClass("+12")).toBe("12");
    expect(newClass(" zebra ")).toBe("zebra");
    expect(newClass("+")).toBe("");
    expect(sameLabel("3", "3.0")).toBe(true);
    expect(sameLabel("true", "True")).toBe(true);
    expect(sameLabel("cat", "Cat")).toBe(false);
    expect(sameLabel("", "0")).toBe(false);
  });
});

describe("LabelPicker", () => {
  beforeEach(() => document.body.replaceChildren());

  it("opens focused on its search box, under the anchor, with every class and unlabelled", () => {
    const { picker, search } = setup();
    expect(picker.isOpen).toBe(true);
    expect(document.activeElement).toBe(search);
    expect(picker.node().querySelector(".ww-picker-title")!.textContent).toBe("label of row 17");
    expect(picker.entries).toEqual([...DIGITS.map((d) => d.value), "unlabelled"]);
    expect(picker.node().classList.contains("ww-picker-grid")).toBe(DIGITS.length <= GRID_MAX);
    expect(picker.node().querySelectorAll(".ww-pick-count")[3]!.textContent).toBe("103");
    expect(picker.node().getAttribute("role")).toBe("dialog");
  });

  it("a digit picks its class at once when the classes are the digits", () => {
    const { picker, key, chosen, anchor } = setup({ current: "4" });
    expect(key("7").defaultPrevented).toBe(true);
    expect(chosen).toEqual([{ kind: "class", value: "7" }]);
    expect(picker.isOpen).toBe(false);
    expect(document.activeElement).toBe(anchor); // focus goes back where it came from
  });

  it("digits pick by index when there are a few named classes", () => {
    const { key, chosen } = setup({ classes: ANIMALS });
    const keys = Array.from(document.querySelectorAll(".ww-pick-class .ww-pick-key"), (e) => e.textContent);
    expect(keys).toEqual(["0", "1", "2", "3"]);
    key("1");
    expect(chosen).toEqual([{ kind: "class", value: "dog" }]);
  });

  it("a digit past the list does nothing in index mode", () => {
    const { picker, key, chosen } = setup({ classes: ANIMALS });
    expect(key("8").defaultPrevented).toBe(true);
    expect(chosen).toEqual([]);
    expect(picker.isOpen).toBe(true);
  });

  it("type-ahead narrows by name; arrows move; Enter commits the active entry", () => {
    const classes = ["apple", "banana", "cherry", "blueberry", "avocado", "grape", "kiwi", "lemon", "lime", "mango", "melon", "papaya"].map(
      (value) => ({ value, count: 1 }),
    );
    const { picker, type, key, active, chosen } = setup({ classes });
    expect(picker.node().classList.contains("ww-picker-grid")).toBe(false); // 12 classes: a list
    type("b");
    expect(picker.entries).toEqual(["banana", "blueberry"]); // classes match: no "add class"
    expect(active()).toBe("banana");
    key("ArrowDown");
    expect(active()).toBe("blueberry");
    key("ArrowDown"); // stays on the last entry
    expect(active()).toBe("blueberry");
    key("ArrowUp");
    type("a");
    expect(picker.entries).toEqual(["banana"]);
    key("Enter");
    expect(chosen).toEqual([{ kind: "class", value: "banana" }]);
  });

  it("arrows move by rows in the grid of a few classes, and on to unlabelled", () => {
    const { key, active, chosen } = setup();
    expect(active()).toBe("0");
    key("ArrowRight");
    expect(active()).toBe("1");
    key("ArrowDown");
    expect(active()).toBe("6");
    key("ArrowDown");
    expect(active()).toBe("unlabelled");
    key("ArrowUp");
    expect(active()).toBe("5");
    key("ArrowUp");
    expect(active()).toBe("0");
    key("ArrowLeft");
    expect(active()).toBe("0");
    key("Enter");
    expect(chosen).toEqual([{ kind: "class", value: "0" }]);
  });

  it("the current label is marked and active; unlabelled rows start on 'unlabelled'", () => {
    let s = setup({ current: "3" });
    expect(s.active()).toBe("3");
    expect(document.querySelector(".ww-pick-current")!.textContent).toContain("3");
    s.picker.close();
    s = setup({ current: null });
    expect(s.active()).toBe("unlabelled");
    expect(document.querySelector(".ww-pick-current .ww-pick-name")!.textContent).toBe("unlabelled");
  });

  it("unlabelled is a choice: Delete, or typed", () => {
    let s = setup();
    s.key("Delete");
    expect(s.chosen).toEqual([{ kind: "missing" }]);
    s = setup({ classes: ANIMALS });
    s.type("unl");
    expect(s.picker.entries).toEqual(["unlabelled"]);
    s.key("Enter");
    expect(s.chosen).toEqual([{ kind: "missing" }]);
  });

  it("Esc cancels: nothing chosen, focus back, onCancel called", () => {
    const { picker, key, chosen, anchor, cancelled } = setup();
    key("Escape");
    expect(picker.isOpen).toBe(false);
    expect(chosen).toEqual([]);
    expect(cancelled()).toBe(1);
    expect(document.activeElement).toBe(anchor);
    expect((picker.node() as HTMLElement).style.display).toBe("none");
  });

  it("a new class only through the explicit '+ add class' entry", () => {
    const { picker, type, key, active, chosen } = setup({ classes: ANIMALS });
    type("zebra");
    expect(picker.entries).toEqual(["add class “zebra”"]);
    expect(active()).toBeNull(); // never active by itself
    key("Enter");
    expect(chosen).toEqual([]);
    expect(picker.isOpen).toBe(true);
    expect(picker.node().querySelector(".ww-picker-hint")!.textContent).toContain("no class matches");
    key("ArrowDown");
    expect(active()).toBe("add class “zebra”");
    key("Enter");
    expect(chosen).toEqual([{ kind: "new", value: "zebra" }]);
  });

  it("'+' asks for a new class even when its name starts like a known one", () => {
    const { picker, type } = setup({ classes: ANIMALS });
    type("do");
    expect(picker.entries).toEqual(["dog"]);
    const s2 = setup({ classes: ANIMALS });
    s2.type("+do");
    expect(s2.picker.entries).toEqual(["add class “do”"]); // "+do" narrows to nothing
  });

  it("with digit classes, '+' starts a new class's name (the digits after it are typed)", () => {
    const { picker, type, key, chosen } = setup({ numeric: true });
    type("+12");
    expect(picker.entries).toEqual(["add class “12”"]);
    key("ArrowDown");
    key("Enter");
    expect(chosen).toEqual([{ kind: "new", value: "12" }]);
  });

  it("a numeric label column is offered only numbers as new classes", () => {
    const { picker, type } = setup({ numeric: true, classes: [{ value: "10", count: 1 }, { value: "20", count: 2 }] });
    type("x");
    expect(picker.entries).toEqual([]);
    expect(picker.node().querySelector(".ww-pick-more")!.textContent).toBe("no class matches");
  });

  it("an existing class spelled differently is not offered as new", () => {
    const { picker, type } = setup({ numeric: true, classes: [{ value: "10", count: 1 }, { value: "20", count: 2 }] });
    type("10.0");
    expect(picker.entries).toEqual([]);
  });

  it("a key typed on the label cell opens the picker with it", () => {
    let s = setup({ initialKey: "5" });
    expect(s.chosen).toEqual([{ kind: "class", value: "5" }]);
    expect(s.picker.isOpen).toBe(false);
    s = setup({ classes: ANIMALS, initialKey: "b" });
    expect(s.search.value).toBe("b");
    expect(s.picker.entries).toEqual(["bird"]);
    s = setup({ initialKey: "Delete" });
    expect(s.chosen).toEqual([{ kind: "missing" }]);
  });

  it("shows class names as text, never as markup", () => {
    const { picker } = setup({ classes: ANIMALS });
    expect(picker.entries).toContain("<img src=x onerror=alert(1)>");
    expect(document.querySelector("img")).toBeNull();
    const { picker: p2, type } = setup({ classes: ANIMALS });
    type("<b>");
    expect(p2.entries.at(-1)).toBe("add class “<b>”");
    expect(document.querySelector("b")).toBeNull();
  });

  it("a click on an entry chooses it; clicking elsewhere (focus leaves) cancels", () => {
    let s = setup();
    const eight = document.querySelector<HTMLElement>('.ww-pick[data-value="8"]')!;
    const down = new MouseEvent("mousedown", { bubbles: true, cancelable: true });
    eight.dispatchEvent(down);
    expect(down.defaultPrevented).toBe(true); // keeps the focus in the search box
    eight.querySelector<HTMLElement>(".ww-pick-count")!.click();
    expect(s.chosen).toEqual([{ kind: "class", value: "8" }]);
    s = setup();
    const outside = document.createElement("input");
    document.body.append(outside);
    outside.focus();
    expect(s.picker.isOpen).toBe(false);
    expect(s.cancelled()).toBe(1);
  });

  it("keys never leave the picker (the table and the notebook do not see them)", () => {
    const { picker, search } = setup();
    let seen = 0;
    picker.node().parentElement!.addEventListener("keydown", () => seen++);
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "a", bubbles: true }));
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect(seen).toBe(0);
  });

  it("lists at most MAX_SHOWN classes and says how many more there are", () => {
    const many = Array.from({ length: 250 }, (_, i) => ({ value: `class ${i}`, count: 1 }));
    const { picker, type } = setup({ classes: many });
    expect(picker.entries.length).toBe(MAX_SHOWN + 1); // and "unlabelled"
    expect(picker.node().querySelector(".ww-pick-more")!.textContent).toBe("150 more: type to narrow");
    type("class 24");
    expect(picker.entries.slice(0, 3)).toEqual(["class 24", "class 240", "class 241"]);
  });

  it("scrolling the table under it closes it; scrolling the page does not", () => {
    const { picker, anchor } = setup();
    const scroller = document.createElement("div");
    anchor.parentElement!.insertBefore(scroller, anchor);
    scroller.append(anchor);
    document.dispatchEvent(new Event("scroll")); // the page: the anchor moves with the widget
    expect(picker.isOpen).toBe(true);
    scroller.dispatchEvent(new Event("scroll")); // the table's rows: the anchor moves away
    expect(picker.isOpen).toBe(false);
  });
});
