"""JupyterLab 4: a throw-away server, the one-cell host notebook run with Shift+Enter, the
user's steps in the page, the kernel asked by a second jupyter_client, the store reopened
from disk; then the same widget in JupyterLab's dark theme."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .hostkit import (
    ARTIFACTS,
    check_class_panel,
    check_readable,
    console_errors,
    jupyter,
    open_jupyter_notebook,
    record_timing,
    see_rows,
    sort_and_edit,
)

HOST = "jupyterlab"


@pytest.fixture(scope="module")
def server(host_tmp, env):
    with jupyter("jupyterlab", host_tmp, env) as s:
        yield s


@pytest.fixture(scope="module")
def kernel(server, page):
    t0 = time.monotonic()
    kc = open_jupyter_notebook(server, page, "lab/tree/hosts.ipynb")
    record_timing(HOST, startup_s=server.startup_s, open_and_run_s=time.monotonic() - t0)
    yield kc
    kc.close()


@pytest.fixture(scope="module")
def widget(server, page, kernel):
    t0 = time.monotonic()
    root = page.locator(".jp-Cell .ww-root")
    see_rows(root)
    record_timing(HOST, run_to_rows_s=time.monotonic() - t0)
    return root


def test_lab_rows_sort_edit(page, widget, kernel, env):
    sort_and_edit(page, widget, env, HOST, kernel=kernel)


def test_lab_class_panel_and_text(widget):
    check_class_panel(widget)
    check_readable(widget)


def test_lab_dark_theme(page, widget):
    t0 = time.monotonic()
    light_bg = widget.evaluate("e => getComputedStyle(e).backgroundColor")
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Theme")).hover()
    page.get_by_role("menuitem", name="JupyterLab Dark", exact=True).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
    # the widget follows the theme: a dark background, and every kind of text readable
    expect(widget).not_to_have_css("background-color", light_bg)
    bg = widget.evaluate("e => getComputedStyle(e).backgroundColor")
    rgb = [int(v) for v in re.findall(r"\d+", bg)[:3]]
    assert sum(rgb) / 3 < 80, f"the widget's background {bg} is not dark in the dark theme"
    ratios = check_readable(widget)
    check_class_panel(widget)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(ARTIFACTS / f"{HOST}-dark-widget.png"))
    page.screenshot(path=str(ARTIFACTS / f"{HOST}-dark-page.png"))
    assert not console_errors(page.console_log, []), page.console_log
    record_timing(HOST, dark_theme_s=time.monotonic() - t0, dark_min_contrast=min(ratios.values()))
