"""End to end, issue 12 points 3 and 4 and issue 13 point 3: the suggestions panel shows
its counts, a click filters (and sorts) to a line's rows, its bulk actions (relabel the
selection to the suggested label, down-weight, exclude) each commit one named revision,
and the counts update; runs sit beside revisions in the history. Real JupyterLab +
Chromium + a 20,000-row table with a metrics run and a label-issue run; every step is
checked against the kernel and the store reopened from disk in this process. Screenshots
in the light and the dark theme go to artifacts/suggestions-*.png."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ARTIFACTS, row, started_notebook, wait_until, widget
from playwright.sync_api import expect

import weightwidget as ww
from weightwidget import view

NB = "suggestions_e2e.ipynb"
STATE = (
    "import json; print(json.dumps({'filter': w.filter, 'sort_by': w.sort_by,"
    " 'ascending': w.sort_ascending, 'selected': w.selected, 'matched': w.matched,"
    " 'revision': w.revision, 'store': t.store_url}))"
)


@pytest.fixture(scope="module")
def nb(jupyter_server, lab_page):
    yield from started_notebook(jupyter_server, lab_page, NB)


@pytest.fixture(scope="module")
def disk(nb):
    return ww.WeightTable.open(nb.kernel(STATE)["store"])


def panel_line(nb, key: str):
    return widget(nb).locator(f'.ww-suggestion[data-key="{key}"]')


def shown_counts(nb) -> dict[str, str]:
    lines = widget(nb).locator(".ww-suggestion")
    return dict(
        zip(
            lines.evaluate_all("ls => ls.map(l => l.dataset.key)"),
            lines.locator(".ww-suggest-count").all_text_contents(),
            strict=True,
        )
    )


def expected(disk: ww.WeightTable) -> dict[str, str]:
    """The counts the page must show: the view over the store reopened from disk."""
    disk.latest()
    return {s.key: f"{s.count:,}" for s in view.suggestions(disk)}


def test_the_panel_shows_the_counts(nb, disk):
    expect(row(nb, 0)).to_be_visible(timeout=60_000)
    expect(panel_line(nb, "excluded")).to_be_visible()
    want = expected(disk)
    assert list(want) == [
        "label_issues:r1",
        "relabels:r1",
        "hardest:m1",
        "least_confident:m1",
        "label_next",
        "excluded",
    ]
    wait_until(lambda: shown_counts(nb) == want, f"the panel's counts {want}")
    assert int(want["label_issues:r1"].replace(",", "")) > 500
    assert want["label_next"] == "1,000"
    titles = widget(nb).locator(".ww-suggest-title").all_text_contents()
    assert titles[:2] == ["label issues", "suggested relabels"]
    assert "unlabelled: label next" in titles
    # runs beside the revisions they were computed at
    runs = widget(nb).locator(".ww-run")
    expect(runs).to_have_count(2)
    expect(runs.nth(0)).to_contain_text("r1 · label issues · at r1")
    expect(runs.nth(1)).to_contain_text("m1 · metrics · at r0")
    expect(runs.nth(1).locator(".ww-run-meta")).to_contain_text(re.compile(r"accuracy \d+\.\d%"))
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-light-initial.png"))
    # the side panel scrolls: the history's oldest revision can be reached
    side = widget(nb).locator(".ww-side")
    side.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    oldest = widget(nb).locator('.ww-rev[data-revision="0"]')
    oldest.scroll_into_view_if_needed()
    expect(oldest).to_be_in_viewport()
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-light-history.png"))
    side.evaluate("e => { e.scrollTop = 0; }")


def test_a_click_filters_and_sorts_to_the_line(nb, disk):
    line = panel_line(nb, "label_issues:r1")
    line.click()
    item = next(s for s in view.suggestions(disk) if s.key == "label_issues:r1")
    box = widget(nb).locator(".ww-filter")
    expect(box).to_have_value(item.filter)
    expect(widget(nb).locator(".ww-counts")).to_contain_text(f"{item.count:,} of 20,000 rows match")
    expect(line).to_have_class(re.compile("ww-active"))
    state = nb.kernel(STATE)
    assert (state["filter"], state["sort_by"], state["ascending"]) == (
        item.filter,
        "r1_label_quality",
        True,
    )
    worst = view.TableView(disk, filter=item.filter, sort_by="r1_label_quality").ids(0, 3)
    for i, r in enumerate(worst.tolist()):
        expect(row(nb, i)).to_have_attribute("data-row", str(r))
    # the shown line carries its actions; clicking it again shows every row
    expect(widget(nb).locator(".ww-suggest-actions .ww-suggest-exclude")).to_be_visible()
    line.click()
    expect(box).to_have_value("")
    expect(widget(nb).locator(".ww-counts")).to_contain_text("20,000 of 20,000 rows match")
    expect(widget(nb).locator(".ww-suggest-actions")).to_have_count(0)


def test_relabel_selected_rows_to_the_suggested_label(nb, disk):
    panel_line(nb, "relabels:r1").click()
    item = next(s for s in view.suggestions(disk) if s.key == "relabels:r1")
    expect(widget(nb).locator(".ww-filter")).to_have_value(item.filter)
    expect(row(nb, 4)).to_be_visible()
    row(nb, 0).click()
    row(nb, 4).click(modifiers=["Shift"])
    wait_until(lambda: len(nb.kernel(STATE)["selected"]) == 5, "5 rows selected")
    chosen = nb.kernel(STATE)["selected"]
    target = widget(nb).locator(".ww-suggest-target")
    expect(target).to_have_value("selection")
    expect(target.locator("option").nth(1)).to_have_text("selected (5)")
    rev = disk.latest().revision
    suggested = np.asarray(disk.column("r1_suggested_label"))[chosen]
    widget(nb).locator(".ww-suggest-relabel").click()
    message = f"r{rev + 1}: relabel 5 selected suggested relabels of run r1 to the suggested label"
    expect(widget(nb).locator(".ww-message")).to_have_text(message)
    wait_until(lambda: disk.latest().revision == rev + 1, "one revision on disk")
    assert disk.labels[chosen].tolist() == suggested.tolist()
    want = expected(disk)
    assert want["relabels:r1"] == f"{item.count - 5:,}"
    wait_until(lambda: shown_counts(nb) == want, "the counts after the relabel")
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-light-relabelled.png"))


def test_down_weight_the_hardest_rows(nb, disk):
    panel_line(nb, "hardest:m1").click()
    item = next(s for s in view.suggestions(disk) if s.key == "hardest:m1")
    expect(widget(nb).locator(".ww-filter")).to_have_value(item.filter)
    expect(widget(nb).locator(".ww-suggest-relabel")).to_be_hidden()  # not offered here
    rows = disk.select(item.filter)
    before = disk.weights.copy()
    rev = disk.revision
    factor = widget(nb).locator(".ww-suggest-factor")
    factor.fill("0.25")
    widget(nb).locator(".ww-suggest-scale").click()
    expect(widget(nb).locator(".ww-message")).to_have_text(
        f"r{rev + 1}: down-weight {item.count:,} hardest rows by loss of run m1 (weight × 0.25)"
    )
    wait_until(lambda: disk.latest().revision == rev + 1, "one revision on disk")
    changed = np.flatnonzero(disk.weights != before)
    assert changed.tolist() == rows.tolist()
    assert np.allclose(disk.weights[rows], before[rows] * 0.25)


def test_bulk_exclude_commits_one_revision_and_the_counts_update(nb, disk):
    line = panel_line(nb, "label_issues:r1")
    line.click()
    item = next(s for s in view.suggestions(disk) if s.key == "label_issues:r1")
    expect(widget(nb).locator(".ww-filter")).to_have_value(item.filter)
    expect(widget(nb).locator(".ww-suggest-target")).to_have_value("matched")
    rows = disk.select(item.filter)
    rev, excluded = disk.revision, int((disk.weights == 0).sum())
    widget(nb).locator(".ww-suggest-exclude").click()
    expect(widget(nb).locator(".ww-message")).to_have_text(
        f"r{rev + 1}: exclude {item.count:,} label issues of run r1"
    )
    wait_until(lambda: disk.latest().revision == rev + 1, "one revision on disk")
    again = ww.WeightTable.open(disk.store_url)  # reopened from disk, in this process
    assert again.revision == rev + 1
    assert (again.weights[rows] == 0).all() and int((again.weights == 0).sum()) == excluded + len(
        rows
    )
    assert again.history().iloc[-1]["message"] == f"exclude {item.count:,} label issues of run r1"
    want = expected(disk)
    assert want["label_issues:r1"] == "0" and want["excluded"] == f"{excluded + len(rows):,}"
    wait_until(lambda: shown_counts(nb) == want, "the counts after the exclude")
    expect(widget(nb).locator(".ww-counts")).to_have_text(re.compile(r"^0 of 20,000 rows match"))
    expect(widget(nb).locator(".ww-rev").first).to_contain_text(
        f"exclude {item.count:,} label issues of run r1"
    )
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-light-excluded.png"))
    # label next: the unlabelled rows, least confident first
    panel_line(nb, "label_next").click()
    expect(widget(nb).locator(".ww-counts")).to_contain_text("1,000 of 20,000 rows match")
    first = view.TableView(disk, filter="label is missing", sort_by="m1_confidence").ids(0, 1)
    expect(row(nb, 0)).to_have_attribute("data-row", str(int(first[0])))
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-light-label-next.png"))


def test_dark_theme(nb):
    page = nb.page
    panel_line(nb, "least_confident:m1").click()  # a shown line with its actions
    expect(widget(nb).locator(".ww-suggest-actions")).to_be_visible()
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).hover()
    page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    bg = (
        widget(nb)
        .locator(".ww-suggest")
        .evaluate("e => getComputedStyle(e.closest('.ww-root')).backgroundColor")
    )
    assert bg != "rgb(255, 255, 255)", "the widget ignores the dark theme"
    widget(nb).scroll_into_view_if_needed()
    widget(nb).screenshot(path=str(ARTIFACTS / "suggestions-dark.png"))
    errors = [m for m in page.console_log if m.startswith(("[error]", "[pageerror]"))]
    assert not errors, errors
