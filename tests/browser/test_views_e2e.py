"""End to end, issue 11: the table stays oriented when a filter changes while scrolled
deep, a selection never reaches rows the filter hides, and brushing a column histogram
writes the condition into the filter. Real JupyterLab + Chromium + a 1,000,000-row table;
every step is checked against the kernel's state and the store reopened from disk."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARTIFACTS, row, started_notebook, wait_until, widget
from playwright.sync_api import expect

import weightwidget as ww

NB = "widget_e2e.ipynb"
STATE = (
    "import json; print(json.dumps({'filter': w.filter, 'selected': w.selected,"
    " 'matched': w.matched, 'revision': w.revision, 'store': t.store_url}))"
)


@pytest.fixture(scope="module")
def nb(jupyter_server, lab_page):
    yield from started_notebook(jupyter_server, lab_page, NB)


@pytest.fixture(scope="module")
def disk(nb):
    return ww.WeightTable.open(nb.kernel(STATE)["store"])


def counts(nb):
    return widget(nb).locator(".ww-counts")


def scroll_top(nb) -> float:
    return widget(nb).locator(".ww-scroll").evaluate("e => e.scrollTop")


def inside(inner, outer) -> bool:
    a, b = inner.bounding_box(), outer.bounding_box()
    return a is not None and b is not None and b["y"] - 1 <= a["y"] <= b["y"] + b["height"]


def test_filter_while_scrolled_deep_keeps_the_table_oriented(nb, disk):
    expect(row(nb, 0)).to_be_visible(timeout=60_000)
    scroll = widget(nb).locator(".ww-scroll")
    scroll.evaluate("e => { e.scrollTop = e.scrollHeight / 2; }")
    wait_until(
        lambda: (
            widget(nb)
            .locator(".ww-row:not(.ww-loading):not(.ww-stale)")
            .evaluate_all("rs => rs.some(r => +r.dataset.position > 400000)")
        ),
        "rows from the middle of a million",
    )
    header = widget(nb).locator(".ww-header")
    assert inside(header, scroll), "the header scrolled away"
    widget(nb).screenshot(path=str(ARTIFACTS / "views-deep.png"))

    text = "label == 9 and loss > 5.5"
    n = disk.count(text)
    assert 100 < n < 1000
    widget(nb).locator(".ww-filter").fill(text)
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    expect(row(nb, 0)).to_be_visible()
    first = disk.select(text)[:3].tolist()
    assert [int(row(nb, i).get_attribute("data-row")) for i in range(3)] == first
    assert scroll_top(nb) == 0
    assert inside(header, scroll) and header.is_visible()
    height = scroll.evaluate("e => e.scrollHeight")
    head = widget(nb).locator(".ww-head").evaluate("e => e.offsetHeight")
    assert height == pytest.approx(head + n * 28, abs=2), "the spacer follows the row count"
    widget(nb).screenshot(path=str(ARTIFACTS / "views-filtered-from-deep.png"))

    # the mouse wheel scrolls the filtered rows, and back
    box = scroll.bounding_box()
    nb.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    nb.page.mouse.wheel(0, 1400)
    wait_until(lambda: scroll_top(nb) > 1000, "the wheel scrolls down")
    expect(row(nb, 60)).to_be_visible()
    assert inside(header, scroll)
    nb.page.mouse.wheel(0, -5000)
    wait_until(lambda: scroll_top(nb) == 0, "the wheel scrolls back up")
    expect(row(nb, 0)).to_be_visible()
    widget(nb).locator(".ww-filter").fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")


def test_apply_to_selection_changes_only_visible_rows(nb, disk):
    expect(row(nb, 0)).to_be_visible()
    # rows 0..8 are fully on screen (a click on a half-hidden row scrolls the table, and
    # the pooled row elements then show other rows under the pointer)
    row(nb, 0).click()
    row(nb, 8).click(modifiers=["Shift"])
    wait_until(lambda: nb.kernel(STATE)["selected"] == list(range(9)), "9 rows selected")
    expect(counts(nb)).to_contain_text("9 selected")
    labels = disk.labels[:9]
    visible = [i for i in range(9) if labels[i] == 0]
    assert 0 < len(visible) < 9
    widget(nb).locator(".ww-filter").fill("label == 0")
    n = disk.count("label == 0")
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    expect(counts(nb)).to_contain_text(f"{len(visible)} selected")
    target = widget(nb).locator(".ww-target")
    expect(target.locator("option").first).to_have_text(f"selection ({len(visible)})")
    assert nb.kernel(STATE)["selected"] == visible
    disk.latest()
    before, rev = disk.weights.copy(), disk.revision
    widget(nb).locator(".ww-exclude").click()
    expect(widget(nb).locator(".ww-message")).to_contain_text(f"exclude {len(visible)} rows")
    wait_until(lambda: disk.latest().revision == rev + 1, "the edit on disk")
    changed = np.flatnonzero(disk.weights != before).tolist()
    assert changed == visible  # the hidden selected rows kept their weights
    widget(nb).screenshot(path=str(ARTIFACTS / "views-selection-filtered.png"))
    widget(nb).locator(".ww-undo").click()
    wait_until(lambda: disk.latest().revision == rev + 2, "undo on disk")
    assert disk.weights.tolist() == before.tolist()
    widget(nb).locator(".ww-filter").fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")


def test_brushing_a_histogram_writes_the_filter(nb, disk):
    chart = widget(nb).locator('.ww-scell[data-column="loss"] .ww-hist-chart')
    expect(chart).to_be_visible()
    expect(chart.locator(".ww-bin").first).to_be_visible()
    # the previous test cleared the filter: let the summaries of all rows settle first
    # (they are drawn anew when they arrive, so a box taken meanwhile can vanish)
    label_counts = widget(nb).locator('.ww-scell[data-column="label"] .ww-vcount')
    expect(label_counts.first).to_have_text(f"{int(np.bincount(disk.labels).max()):,}")
    box = wait_until(chart.bounding_box, "the loss histogram laid out")
    y = box["y"] + box["height"] / 2
    nb.page.mouse.move(box["x"] + box["width"] * 0.2, y)
    nb.page.mouse.down()
    nb.page.mouse.move(box["x"] + box["width"] * 0.35, y, steps=4)
    nb.page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=4)
    nb.page.mouse.up()
    box_text = widget(nb).locator(".ww-filter")
    expect(box_text).to_have_value(re.compile(r"^[\d.]+ <= loss < [\d.]+$"))
    text = box_text.input_value()
    n = disk.count(text)
    expect(counts(nb)).to_contain_text(f"{n:,} of 1,000,000 rows match")
    expect(widget(nb).locator(".ww-summary")).to_contain_text(f"matched {n:,}")
    assert nb.kernel(STATE)["filter"] == text
    assert 10_000 < n < 900_000
    first = int(disk.select(text)[0])
    expect(row(nb, 0)).to_have_attribute("data-row", str(first))
    # the other columns' summaries follow: the label's top values count matched rows
    top = int(np.bincount(disk.labels[disk.mask(text)]).max())
    expect(label_counts.first).to_have_text(f"{top:,}")
    expect(chart.locator(".ww-brush")).to_be_visible()
    widget(nb).screenshot(path=str(ARTIFACTS / "views-brushed.png"))

    # a click on a top value of the label adds its condition; the × removes the brush
    widget(nb).locator('.ww-scell[data-column="label"] .ww-vrow').first.click()
    expect(box_text).to_have_value(re.compile(r" and label == \d$"))
    widget(nb).locator('.ww-scell[data-column="loss"] .ww-sum-clear').click()
    expect(box_text).to_have_value(re.compile(r"^label == \d$"))
    both = box_text.input_value()
    expect(counts(nb)).to_contain_text(f"{disk.count(both):,} of 1,000,000 rows match")
    box_text.fill("")
    expect(counts(nb)).to_contain_text("1,000,000 of 1,000,000 rows match")
    errors = [m for m in nb.page.console_log if m.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
