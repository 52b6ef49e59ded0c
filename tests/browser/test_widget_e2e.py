"""End to end: real JupyterLab + Debian Chromium + a real kernel with a 1,000,000-row
table. Each step acts in the page, then checks the kernel's widget state and the
store on disk (reopened in this process) against what the page shows."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from conftest import ARTIFACTS, row, started_notebook, wait_until, widget
from playwright.sync_api import expect

import weightwidget as ww

NB = "widget_e2e.ipynb"
STATE = (
    "import json; print(json.dumps({'filter': w.filter, 'sort_by': w.sort_by,"
    " 'sort_ascending': w.sort_ascending, 'selected': w.selected, 'select_all': w.select_all,"
    " 'matched': w.matched, 'revision': w.revision, 'store': t.store_url}))"
)


@pytest.fixture(scope="module")
def nb(jupyter_server, lab_page):
    yield from started_notebook(jupyter_server, lab_page, NB, cells=1)


def state(nb) -> dict:
    return nb.kernel(STATE)


def disk_weights(nb) -> tuple[int, np.ndarray]:
    s = state(nb)
    t = ww.WeightTable.open(s["store"])
    return t.revision, t.weights


def cell_text(nb, position: int, column: str) -> str:
    cols = [c.inner_text() for c in widget(nb).locator(".ww-hcell .ww-hname").all()]
    return row(nb, position).locator(".ww-cell").nth(cols.index(column)).inner_text()


def test_first_rows_visible(nb):
    page = nb.page
    t0 = time.monotonic()
    nb.run_cell(1)
    expect(row(nb, 0)).to_be_visible(timeout=30_000)
    first_rows_s = time.monotonic() - t0
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings.update(cell_to_first_rows_s=round(first_rows_s, 3), rows=1_000_000)
    path.write_text(json.dumps(timings, indent=1))
    expect(widget(nb).locator(".ww-counts")).to_contain_text("1,000,000 of 1,000,000 rows match")
    assert row(nb, 0).get_attribute("data-row") == "0"
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-initial.png"))
    page.screenshot(path=str(ARTIFACTS / "page-light-initial.png"))
    s = state(nb)
    assert s["matched"] == 1_000_000 and s["filter"] == "" and s["revision"] == 0


@pytest.fixture(scope="module")
def disk(nb):
    """The store reopened in this process (refreshed with latest() before each check)."""
    return ww.WeightTable.open(state(nb)["store"])


def shown_rows(nb, n: int) -> list[int]:
    return [int(row(nb, i).get_attribute("data-row")) for i in range(n)]


def counts(nb):
    return widget(nb).locator(".ww-counts")


def test_sort_by_column(nb, disk):
    header = widget(nb).locator(".ww-hcell", has_text="loss")
    header.click()
    expect(header.locator(".ww-sort")).to_have_text("▲")
    expect(row(nb, 0)).not_to_have_attribute("data-row", "0")
    expected = disk.sort_order("loss")[:5].tolist()
    wait_until(lambda: shown_rows(nb, 5) == expected, "rows sorted by loss ascending")
    assert float(cell_text(nb, 0, "loss")) == pytest.approx(disk.column("loss").min(), abs=1e-3)
    s = state(nb)
    assert (s["sort_by"], s["sort_ascending"]) == ("loss", True)

    header.click()
    expect(header.locator(".ww-sort")).to_have_text("▼")
    expected = disk.sort_order("loss", ascending=False)[:5].tolist()
    wait_until(lambda: shown_rows(nb, 5) == expected, "rows sorted by loss descending")
    s = state(nb)
    assert (s["sort_by"], s["sort_ascending"]) == ("loss", False)
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-sorted.png"))

    header.click()  # third click: sort off, dataset order again
    expect(header.locator(".ww-sort")).to_have_text("")
    wait_until(lambda: shown_rows(nb, 3) == [0, 1, 2], "dataset order")
    assert state(nb)["sort_by"] is None


def test_type_filter_and_invalid_filter(nb, disk):
    box = widget(nb).locator(".ww-filter")
    box.fill("label == 9 and loss > 3")
    n = disk.count("label == 9 and loss > 3")
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    s = state(nb)
    assert s["filter"] == "label == 9 and loss > 3" and s["matched"] == n
    first = int(row(nb, 0).get_attribute("data-row"))
    assert first == int(disk.select("label == 9 and loss > 3")[0])

    box.fill("label == 9 and lable > 3")  # typo: unknown column at position 15
    err = widget(nb).locator(".ww-filter-error")
    expect(err).to_be_visible()
    expect(err).to_contain_text("at position 15")
    expect(err).to_contain_text("lable")
    expect(err.locator("mark")).to_have_text("l")
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-filter-error.png"))
    # the last good filter is kept, in the page and in the kernel
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    s = state(nb)
    assert s["filter"] == "label == 9 and loss > 3" and s["matched"] == n

    box.fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")
    expect(err).to_be_hidden()
    assert state(nb)["filter"] == ""


def test_edit_weight_cell(nb, disk):
    wcell = row(nb, 2).locator(".ww-role-weight")
    wcell.dblclick()
    editor = wcell.locator("input.ww-edit")
    expect(editor).to_be_focused()
    editor.fill("abc")
    editor.press("Enter")
    expect(editor).to_have_class(re.compile("ww-invalid"))  # refused in place
    editor.fill("-1")
    editor.press("Enter")
    expect(editor).to_have_class(re.compile("ww-invalid"))
    editor.fill("7")
    editor.press("Escape")  # cancel: nothing changes
    expect(editor).to_have_count(0)
    expect(wcell).to_have_text("1")
    assert state(nb)["revision"] == 0

    wcell.dblclick()
    editor.fill("2.5")
    editor.press("Enter")
    expect(wcell).to_have_text("2.5")
    s = state(nb)
    assert s["revision"] == 1
    assert nb.kernel("print(float(t.weights[2]))") == 2.5
    disk.latest()
    assert disk.revision == 1 and disk.weights[2] == 2.5
    expect(widget(nb).locator(".ww-rev.ww-current")).to_contain_text("set weight of row 2 to 2.5")


def test_select_rows_and_exclude(nb, disk):
    row(nb, 3).click()
    row(nb, 6).click(modifiers=["Shift"])  # range 3..6
    row(nb, 9).click(modifiers=["Control"])  # add one
    wait_until(lambda: state(nb)["selected"] == [3, 4, 5, 6, 9], "selection in the kernel")
    expect(widget(nb).locator(".ww-row.ww-selected")).to_have_count(5)
    # keyboard: the cursor is on row 9; ArrowDown + Space adds row 10
    widget(nb).locator(".ww-table").press("ArrowDown")
    widget(nb).locator(".ww-table").press(" ")
    wait_until(lambda: state(nb)["selected"] == [3, 4, 5, 6, 9, 10], "space toggles row 10")
    expect(counts(nb)).to_contain_text("6 selected")
    widget(nb).locator(".ww-exclude").click()
    for pos in (3, 4, 5, 6, 9, 10):
        expect(row(nb, pos).locator(".ww-role-weight")).to_have_text("0")
    expect(row(nb, 7).locator(".ww-role-weight")).to_have_text("1")
    s = state(nb)
    assert s["revision"] == 2
    w_kernel = nb.kernel("print(t.weights[:12].tolist())")
    assert w_kernel == [1, 1, 2.5, 0, 0, 0, 0, 1, 1, 0, 0, 1]
    disk.latest()
    assert disk.revision == 2 and disk.weights[:12].tolist() == w_kernel
    expect(widget(nb).locator(".ww-summary")).to_contain_text("included 999,994")  # status band
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-selected-excluded.png"))


def test_click_class_bar(nb, disk):
    bar = widget(nb).locator('.ww-class[data-value="9"]')
    bar.click()
    n = int((disk.labels == 9).sum())
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    expect(widget(nb).locator(".ww-filter")).to_have_value("label == 9")
    expect(bar).to_have_class(re.compile("ww-active"))
    s = state(nb)
    assert s["filter"] == "label == 9" and s["matched"] == n
    assert int(row(nb, 0).get_attribute("data-row")) == int(np.flatnonzero(disk.labels == 9)[0])
    bar.click()  # again: clear
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")
    assert state(nb)["filter"] == ""


def test_undo_and_redo(nb, disk):
    widget(nb).locator(".ww-table").focus()
    nb.page.keyboard.press("Control+z")
    for pos in (3, 4, 5, 6, 9, 10):
        expect(row(nb, pos).locator(".ww-role-weight")).to_have_text("1")
    s = state(nb)
    assert s["revision"] == 3
    disk.latest()
    assert disk.revision == 3 and disk.weights[:12].tolist() == [1, 1, 2.5] + [1] * 9
    widget(nb).locator(".ww-redo").click()
    expect(row(nb, 3).locator(".ww-role-weight")).to_have_text("0")
    disk.latest()
    assert disk.revision == 4 and disk.weights[3] == 0
    widget(nb).locator(".ww-undo").click()
    expect(row(nb, 3).locator(".ww-role-weight")).to_have_text("1")
    disk.latest()
    assert disk.revision == 5 and disk.weights[3] == 1
    hist = widget(nb).locator(".ww-rev")
    expect(hist).to_have_count(6)
    # revert to r1 from the history panel: r5 already has its weights, so nothing is
    # committed and the status band says so
    widget(nb).locator('.ww-rev[data-revision="1"] .ww-revert').click()
    expect(widget(nb).locator(".ww-message")).to_contain_text("no row would change")
    expect(widget(nb).locator(".ww-rev.ww-current .ww-rev-num")).to_have_text("r5")
    # revert to r0 (itself a new revision)
    widget(nb).locator('.ww-rev[data-revision="0"] .ww-revert').click()
    expect(widget(nb).locator(".ww-rev.ww-current .ww-rev-num")).to_have_text("r6")
    disk.latest()
    assert disk.revision == 6 and disk.weights[:4].tolist() == [1, 1, 1, 1]


def test_python_edit_and_other_process_show_up(nb, disk):
    nb.kernel("t.set_weights([0], 4.0, message='from python'); print(t.revision)")
    expect(row(nb, 0).locator(".ww-role-weight")).to_have_text("4")
    # another process commits to the same store; the page's 2 s ping finds it
    other = ww.WeightTable.open(state(nb)["store"])
    other.set_weights([1], 3.0, message="from another process")
    expect(row(nb, 1).locator(".ww-role-weight")).to_have_text("3", timeout=10_000)
    expect(widget(nb).locator(".ww-rev.ww-current")).to_contain_text("from another process")
    assert nb.kernel("print(t.weights[:2].tolist())") == [4.0, 3.0]


def test_two_displays_stay_in_step(nb):
    nb.run_cell(2)
    second = nb.cell(2).locator(".ww-root")
    expect(
        second.locator('.ww-row[data-position="0"]:not(.ww-loading):not(.ww-stale)')
    ).to_be_visible()
    widget(nb).locator(".ww-filter").fill("label == 4")
    expect(second.locator(".ww-filter")).to_have_value("label == 4")
    n = nb.kernel("print(w.matched)")
    expect(second.locator(".ww-counts")).to_contain_text(f"{n:,} of 1,000,000")
    second.locator(".ww-row[data-position='0'] .ww-role-weight").dblclick()
    second.locator("input.ww-edit").fill("0.5")
    second.locator("input.ww-edit").press("Enter")
    expect(row(nb, 0).locator(".ww-role-weight")).to_have_text("0.5")
    widget(nb).locator(".ww-filter").fill("")
    expect(second.locator(".ww-counts")).to_contain_text("1,000,000 of 1,000,000")


def test_markup_in_captions_is_text(nb):
    expect(row(nb, 0).locator(".ww-kind-string")).to_have_text("<img src=x onerror=alert(1)>")
    assert widget(nb).locator("img").count() == 0
    assert nb.page.js_dialogs == []


def test_image_thumbnails(nb):
    nb.run_cell(3)
    dig = nb.cell(3).locator(".ww-root")
    expect(dig.locator('.ww-row[data-position="0"]:not(.ww-loading):not(.ww-stale)')).to_be_visible(
        timeout=60_000
    )
    thumb = dig.locator('.ww-row[data-position="0"] canvas.ww-thumb')
    expect(thumb).to_be_visible()
    lit = thumb.evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
        ".filter((v, i) => i % 4 === 0 && v > 128).length"
    )
    assert lit > 3, "the digit thumbnail is blank"
    dig.screenshot(path=str(ARTIFACTS / "widget-light-digits.png"))


def test_scroll_to_the_end_of_a_million_rows(nb):
    scroll = widget(nb).locator(".ww-scroll")
    scroll.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    last = row(nb, 999_999)
    expect(last).to_be_visible()
    assert last.get_attribute("data-row") == "999999"
    assert len(widget(nb).locator(".ww-row").all()) < 100  # a window, not the table
    scroll.evaluate("e => { e.scrollTop = e.scrollHeight / 2; }")

    def middle_rows() -> list[tuple[int, int]]:
        pairs = (
            widget(nb)
            .locator(".ww-row")
            .evaluate_all(
                "rs => rs.filter(r => r.style.display !== 'none' && r.dataset.row !== undefined"
                " && !r.classList.contains('ww-loading') && !r.classList.contains('ww-stale'))"
                ".map(r => [+r.dataset.position, +r.dataset.row])"
            )
        )
        return [(p, r) for p, r in pairs if 450_000 < p < 550_000]

    pairs = wait_until(middle_rows, "rows from the middle of the table")
    blank = (
        widget(nb)
        .locator(".ww-row")
        .evaluate_all(
            "rs => rs.filter(r => r.style.display !== 'none' && r.dataset.row === undefined"
            " && !r.classList.contains('ww-loading')).map(r => r.dataset.position)"
        )
    )
    assert blank == [], "rows without data must show as loading"
    assert all(p == r for p, r in pairs), pairs
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-scrolled.png"))
    scroll.evaluate("e => { e.scrollTop = 0; }")
    expect(row(nb, 0)).to_be_visible()


def test_busy_state_while_a_request_is_slow(nb):
    busy = widget(nb).locator(".ww-busy")
    expect(busy).to_be_hidden()
    # make the kernel's undo handler slow (1.5 s) for one request
    nb.kernel(
        "import time\n"
        "_undo = w._handlers['undo']\n"
        "def _slow(msg):\n"
        "    time.sleep(1.5)\n"
        "    w._handlers['undo'] = _undo\n"
        "    return _undo(msg)\n"
        "w._handlers['undo'] = _slow\n"
        "print(1)"
    )
    widget(nb).locator(".ww-undo").click()
    expect(busy).to_be_visible(timeout=1_000)
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-busy.png"))
    expect(busy).to_be_hidden(timeout=10_000)
    expect(widget(nb).locator(".ww-status")).to_contain_text("undo")
    widget(nb).locator(".ww-redo").click()  # put the undone edit back
    expect(widget(nb).locator(".ww-status")).to_contain_text("redo")


def test_keys_stay_in_the_widget(nb, disk):
    """Typing in the filter box and 0/1 in the table must not reach JupyterLab's
    command-mode shortcuts (a, b, d d, m, 0, 1 would insert, delete or convert cells)."""
    cells = nb.panel.locator(".jp-Cell")
    n_cells = cells.count()
    box = widget(nb).locator(".ww-filter")
    box.click()
    box.press_sequentially('label == 1 and loss > 2 and caption contains "dd"')
    box.press_sequentially("")
    n = disk.count('label == 1 and loss > 2 and caption contains "dd"')
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    box.fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")
    row(nb, 5).click()
    rev = state(nb)["revision"]
    widget(nb).locator(".ww-table").press("0")
    expect(row(nb, 5).locator(".ww-role-weight")).to_have_text("0")
    widget(nb).locator(".ww-table").press("1")
    expect(row(nb, 5).locator(".ww-role-weight")).to_have_text("1")
    assert state(nb)["revision"] == rev + 2
    assert cells.count() == n_cells
    assert nb.panel.locator(".jp-MarkdownCell").count() == 0


def test_select_all_matching_multiply_and_rebalance(nb, disk):
    disk.latest()
    before = disk.weights.copy()
    widget(nb).locator(".ww-filter").fill("label == 8")
    n = int((disk.labels == 8).sum())
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    widget(nb).get_by_role("button", name="Select all matching").click()
    expect(counts(nb)).to_contain_text(f"{n:,} selected")
    assert state(nb)["select_all"] is True
    widget(nb).locator(".ww-value").fill("2")
    widget(nb).locator(".ww-scale").click()
    expect(widget(nb).locator(".ww-status")).to_contain_text(
        f"multiply weight by 2 for {n:,} rows matching `label == 8`"
    )
    disk.latest()
    eight = disk.labels == 8
    np.testing.assert_array_equal(disk.weights[eight], before[eight] * 2)
    np.testing.assert_array_equal(disk.weights[~eight], before[~eight])

    widget(nb).locator(".ww-filter").fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")
    assert state(nb)["select_all"] is False  # a new filter clears "all matching"
    widget(nb).locator(".ww-balance").click()  # target: all matching rows
    nums = widget(nb).locator(".ww-class-nums")
    expect(nums.first).to_contain_text("→ 10.0%")
    assert all(t.endswith("→ 10.0%") for t in nums.all_inner_texts())
    disk.latest()
    shares = disk.class_balance()["effective_share"].to_numpy()
    np.testing.assert_allclose(shares, 0.1)
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-light-rebalanced.png"))


def test_dark_theme_screenshots(nb):
    page = nb.page
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).hover()
    page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    bg = widget(nb).evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg != "rgb(255, 255, 255)", "the widget ignores the dark theme"
    widget(nb).scroll_into_view_if_needed()
    widget(nb).screenshot(path=str(ARTIFACTS / "widget-dark.png"))
    nb.cell(3).locator(".ww-root").screenshot(path=str(ARTIFACTS / "widget-dark-digits.png"))
    page.screenshot(path=str(ARTIFACTS / "page-dark.png"))
    errors = [m for m in page.console_log if m.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
