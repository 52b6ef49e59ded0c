"""End to end, issue 13 point 2: label editing in the widget. Real JupyterLab + Chromium +
a kernel with sklearn's digits, 60% of them unlabelled. A user labels a row by eye with
the keyboard (the focused row's image is shown larger), cancels, picks "unlabelled" by
typing, undoes, and bulk-sets a label on every row a filter matches; the class panel,
the label column's top values and the status band follow. After each step the kernel's
table and the store reopened from disk in this process are checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARTIFACTS, row, started_notebook, wait_until, widget
from playwright.sync_api import expect

import weightwidget as ww

NB = "labels_e2e.ipynb"
STATE = (
    "import json; print(json.dumps({'filter': w.filter, 'matched': w.matched,"
    " 'revision': w.revision, 'store': t.store_url, 'codes': t.label_codes.tolist(),"
    " 'message': t.history(limit=1)['message'].iloc[-1]}))"
)
N = 1797


@pytest.fixture(scope="module")
def nb(jupyter_server, lab_page):
    yield from started_notebook(jupyter_server, lab_page, NB)


@pytest.fixture(scope="module")
def disk(nb):
    """The store reopened in this process (refreshed with latest() before each check)."""
    return ww.WeightTable.open(nb.kernel(STATE)["store"])


def label_cell(nb, position: int):
    return row(nb, position).locator(".ww-role-label")


def picker(nb):
    return widget(nb).locator(".ww-picker")


def class_count(nb, value: str) -> int:
    title = widget(nb).locator(f'.ww-class[data-value="{value}"]').get_attribute("title")
    return int(re.search(r": ([\d,]+) rows", title).group(1).replace(",", ""))


def unlabelled_count(nb) -> int:
    title = widget(nb).locator(".ww-class-missing").get_attribute("title")
    return int(re.match(r"([\d,]+) unlabelled rows", title).group(1).replace(",", ""))


def inside(inner, outer) -> bool:
    """Whether ``inner``'s box lies within ``outer``'s (1 px of rounding allowed)."""
    a, b = inner.bounding_box(), outer.bounding_box()
    return (
        a is not None
        and b is not None
        and a["y"] >= b["y"] - 1
        and a["y"] + a["height"] <= b["y"] + b["height"] + 1
    )


def check_kernel_and_disk(nb, disk, revision: int) -> np.ndarray:
    """The kernel's labels equal the store's, reopened from disk; returns the codes."""
    s = wait_until(
        lambda: (lambda s: s if s["revision"] >= revision else None)(nb.kernel(STATE)),
        f"r{revision} in the kernel",
    )
    assert s["revision"] == revision
    wait_until(lambda: disk.latest().revision == revision, f"r{revision} on disk")
    assert disk.label_codes.tolist() == s["codes"]
    reopened = ww.WeightTable.open(s["store"])
    assert reopened.revision == revision
    np.testing.assert_array_equal(reopened.label_codes, disk.label_codes)
    return np.asarray(s["codes"])


def test_unlabelled_rows_and_the_preview_of_the_focused_row(nb, disk):
    expect(row(nb, 0)).to_be_visible(timeout=60_000)
    codes = disk.label_codes
    first_missing = int(np.flatnonzero(codes < 0)[0])
    expect(label_cell(nb, first_missing)).to_have_text("unlabelled")
    expect(label_cell(nb, 0)).to_have_text(str(int(disk.labels[0])))
    # the class panel and the status band count the unlabelled rows
    n_missing = int((codes < 0).sum())
    assert unlabelled_count(nb) == n_missing
    expect(widget(nb).locator(".ww-summary")).to_contain_text(f"unlabelled {n_missing:,}")
    # the cursor starts on row 0: its image, larger, with its label as text
    preview = widget(nb).locator(".ww-preview")
    expect(preview.locator(".ww-preview-label")).to_have_text(f"label {int(disk.labels[0])}")
    expect(preview.locator(".ww-preview-row")).to_have_text("row 0")
    canvas = preview.locator("canvas.ww-preview-img")
    assert canvas.evaluate("c => [c.width, c.height]") == [8, 8]
    box = canvas.bounding_box()
    assert box["width"] >= 96, "the preview is not larger than the thumbnail"
    lit = canvas.evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
        ".filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert lit > 3, "the preview is blank"
    # moving the cursor shows the next row's image
    row(nb, 0).locator(".ww-role-row").click()
    widget(nb).locator(".ww-table").press("ArrowDown")
    expect(preview.locator(".ww-preview-row")).to_have_text("row 1")
    label1 = "unlabelled" if codes[1] < 0 else f"label {int(disk.labels[1])}"
    expect(preview.locator(".ww-preview-label")).to_have_text(label1)
    ARTIFACTS.mkdir(exist_ok=True)
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-light-initial.png"))


def test_label_a_row_inline_with_the_keyboard(nb, disk):
    codes = disk.label_codes
    p = int(np.flatnonzero(codes < 0)[0])
    # the user reads the digit off the preview; the test reads it off the dataset
    truth = nb.kernel("import json; print(json.dumps(digits.target.tolist()))")
    d = str(truth[p])
    n_d, missing = class_count(nb, d), unlabelled_count(nb)
    table = widget(nb).locator(".ww-table")
    # click the row, move to the label column with the keyboard, open the picker
    row(nb, p).locator(".ww-role-row").click()
    table.press("ArrowLeft")
    expect(label_cell(nb, p)).to_have_class(re.compile("ww-cell-focus"))
    table.press("Enter")
    expect(picker(nb)).to_be_visible()
    search = picker(nb).locator(".ww-picker-search")
    expect(search).to_be_focused()
    expect(picker(nb).locator(".ww-picker-title")).to_have_text(f"label of row {p}")
    names = picker(nb).locator(".ww-pick-name")
    expect(names).to_have_text([str(d) for d in range(10)] + ["unlabelled"])
    expect(picker(nb).locator(".ww-pick-current")).to_have_text(re.compile("unlabelled"))
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-light-picker.png"))
    # Esc cancels: nothing changes, the table has the keyboard again
    search.press("Escape")
    expect(picker(nb)).to_be_hidden()
    expect(table).to_be_focused()
    assert nb.kernel(STATE)["revision"] == 0

    # Enter, then the row's digit picks its class at once
    table.press("Enter")
    expect(search).to_be_focused()
    search.press(d)
    expect(picker(nb)).to_be_hidden()
    expect(label_cell(nb, p)).to_have_text(d)
    expect(table).to_be_focused()
    codes = check_kernel_and_disk(nb, disk, 1)
    assert codes[p] == int(d) and disk.labels[p] == int(d)
    assert nb.kernel(STATE)["message"] == f"set label of row {p} to {d}"
    expect(widget(nb).locator(".ww-rev.ww-current")).to_contain_text(f"set label of row {p} to {d}")
    # the class panel, the label column's top values and the status band follow
    wait_until(lambda: class_count(nb, d) == n_d + 1, f"class {d} counted once more")
    assert unlabelled_count(nb) == missing - 1
    expect(widget(nb).locator(".ww-summary")).to_contain_text(f"unlabelled {missing - 1:,}")
    expect(widget(nb).locator(".ww-summary")).to_contain_text("r1")
    label_summary = widget(nb).locator('.ww-scell[data-column="label"]')
    expect(label_summary.locator(".ww-vmore")).to_contain_text(f"∅ {missing - 1:,}")
    # the preview shows the focused row with its new label
    expect(widget(nb).locator(".ww-preview-row")).to_have_text(f"row {p}")
    expect(widget(nb).locator(".ww-preview-label")).to_have_text(f"label {d}")

    # typing on the label cell opens the picker with that key: "un" + Enter -> unlabelled
    table.press("ArrowDown")
    q = p + 1
    before = "unlabelled" if codes[q] < 0 else str(int(disk.labels[q]))
    if before == "unlabelled":  # label it first: its digit, typed on the cell, picks
        table.press(str(truth[q]))
        expect(label_cell(nb, q)).to_have_text(str(truth[q]))
        check_kernel_and_disk(nb, disk, 2)
        rev = 2
    else:
        rev = 1
    table.press("u")
    expect(search).to_have_value("u")
    expect(names).to_have_text(["unlabelled"])
    search.press("n")
    search.press("Enter")
    expect(label_cell(nb, q)).to_have_text("unlabelled")
    codes = check_kernel_and_disk(nb, disk, rev + 1)
    assert codes[q] == -1
    assert nb.kernel(STATE)["message"] == f"set label of row {q} to missing (unlabelled)"

    # a class the table does not have is offered only as an explicit "+ add class"; with
    # digit classes, digits pick, so "+" starts the new class's name
    table.press("Enter")
    search.press_sequentially("+12")
    expect(names).to_have_text(["add class “12”"])
    search.press("Enter")  # nothing is active: Enter does not add it
    expect(picker(nb)).to_be_visible()
    expect(picker(nb).locator(".ww-picker-hint")).to_contain_text("no class matches")
    search.press("Escape")
    assert nb.kernel(STATE)["revision"] == rev + 1
    assert len(disk.latest().classes) == 10


def test_undo_and_redo_of_a_label_edit(nb, disk):
    disk.latest()
    rev, codes = disk.revision, disk.label_codes.copy()
    table = widget(nb).locator(".ww-table")
    table.focus()
    nb.page.keyboard.press("Control+z")
    wait_until(lambda: disk.latest().revision == rev + 1, "undo on disk")
    changed = np.flatnonzero(disk.label_codes != codes)
    assert changed.size == 1
    q = int(changed[0])
    expect(label_cell(nb, q)).to_have_text(str(int(disk.labels[q])))
    check_kernel_and_disk(nb, disk, rev + 1)
    widget(nb).locator(".ww-redo").click()
    expect(label_cell(nb, q)).to_have_text("unlabelled")
    check_kernel_and_disk(nb, disk, rev + 2)
    np.testing.assert_array_equal(disk.label_codes, codes)


def test_bulk_set_a_label_on_every_row_a_filter_matches(nb, disk):
    disk.latest()
    rev = disk.revision
    text = "label is missing and pred == 5"
    ids = disk.select(text)
    n = int(ids.size)
    assert 40 < n < 200
    n5, missing = class_count(nb, "5"), unlabelled_count(nb)
    widget(nb).locator(".ww-filter").fill(text)
    counts = widget(nb).locator(".ww-counts")
    expect(counts).to_contain_text(f"{n:,} of {N:,} rows match")
    expect(widget(nb).locator(".ww-target")).to_have_value("matched")
    widget(nb).locator(".ww-set-label").click()
    expect(picker(nb)).to_be_visible()
    expect(picker(nb).locator(".ww-picker-title")).to_have_text(f"label of {n} rows matching")
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-light-bulk-picker.png"))
    search = picker(nb).locator(".ww-picker-search")
    expect(search).to_be_focused()
    # arrows and Enter this time: ten classes are a grid of five a row, so class 5 is
    # one row down from class 0
    search.press("ArrowDown")
    expect(picker(nb).locator(".ww-pick-active .ww-pick-name")).to_have_text("5")
    search.press("Enter")
    expect(widget(nb).locator(".ww-message")).to_contain_text(
        f"set label to 5 for {n} rows matching `{text}`"
    )
    # one revision; the filter matches nothing now
    expect(counts).to_contain_text(f"0 of {N:,} rows match")
    codes = check_kernel_and_disk(nb, disk, rev + 1)
    assert (codes[ids] == 5).all()
    assert disk.history(limit=1)["rows_changed"].iloc[-1] == n
    # the class histogram follows
    wait_until(lambda: class_count(nb, "5") == n5 + n, "class 5 grew by the rows labelled")
    assert unlabelled_count(nb) == missing - n
    five = widget(nb).locator('.ww-class[data-value="5"]')
    five.click()  # the class bar filters to class 5: the new rows are in it
    expect(counts).to_contain_text(f"{n5 + n:,} of {N:,} rows match")
    label_top = widget(nb).locator('.ww-scell[data-column="label"] .ww-vcount').first
    expect(label_top).to_have_text(f"{n5 + n:,}")
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-light-bulk-done.png"))
    five.click()
    expect(counts).to_contain_text(f"{N:,} of {N:,} rows match")


def test_bulk_label_on_a_selection_changes_only_the_visible_rows(nb, disk):
    disk.latest()
    rev, before = disk.revision, disk.label_codes.copy()
    row(nb, 0).locator(".ww-role-row").click()
    row(nb, 5).locator(".ww-role-row").click(modifiers=["Shift"])
    expect(widget(nb).locator(".ww-counts")).to_contain_text("6 selected")
    widget(nb).locator(".ww-filter").fill("label is not missing")
    visible = [i for i in range(6) if before[i] >= 0]
    expect(widget(nb).locator(".ww-counts")).to_contain_text(f"{len(visible)} selected")
    widget(nb).locator(".ww-set-label").click()
    expect(picker(nb).locator(".ww-picker-title")).to_have_text(
        f"label of {len(visible)} {'row' if len(visible) == 1 else 'rows'} selected"
    )
    picker(nb).locator(".ww-picker-search").press("Delete")  # Del: unlabelled
    expect(widget(nb).locator(".ww-message")).to_contain_text("set label to missing")
    codes = check_kernel_and_disk(nb, disk, rev + 1)
    assert np.flatnonzero(codes != before).tolist() == visible
    widget(nb).locator(".ww-undo").click()
    codes = check_kernel_and_disk(nb, disk, rev + 2)
    np.testing.assert_array_equal(codes, before)
    widget(nb).locator(".ww-filter").fill("")
    expect(widget(nb).locator(".ww-counts")).to_contain_text(f"{N:,} of {N:,} rows match")


def test_dark_theme_and_no_console_errors(nb):
    page = nb.page
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).hover()
    page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    widget(nb).scroll_into_view_if_needed()
    p = 3
    row(nb, p).locator(".ww-role-label").dblclick()
    expect(picker(nb)).to_be_visible()
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-dark-picker.png"))
    picker(nb).locator(".ww-picker-search").press("Escape")
    expect(picker(nb)).to_be_hidden()
    # on a row at the bottom of the table the picker opens above it, inside the widget
    low = max(
        int(r.get_attribute("data-position"))
        for r in widget(nb).locator(".ww-row:not(.ww-loading)").all()
        if r.is_visible() and inside(r, widget(nb).locator(".ww-scroll"))
    )
    row(nb, low).locator(".ww-role-label").dblclick()
    expect(picker(nb)).to_be_visible()
    assert inside(picker(nb), widget(nb)), "the picker sticks out of the widget"
    assert picker(nb).bounding_box()["y"] < label_cell(nb, low).bounding_box()["y"]
    picker(nb).locator(".ww-picker-search").press("Escape")
    expect(picker(nb)).to_be_hidden()
    widget(nb).screenshot(path=str(ARTIFACTS / "labels-dark.png"))
    errors = [m for m in page.console_log if m.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
    assert page.js_dialogs == []
