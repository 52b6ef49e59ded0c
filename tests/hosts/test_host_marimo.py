"""marimo: ``marimo run`` serves a generated app file whose one cell shows the widget.
marimo has no Jupyter CSS variables and a line-height of 1.5 of its own, and renders
anywidgets in a shadow root: the widget must bring its own sizes and colours. The kernel
runs inside the marimo server, so the edit is checked on the store on disk."""

from __future__ import annotations

import re
import sys
import time

import pytest
from hostkit import (
    ARTIFACTS,
    check_class_panel,
    check_readable,
    check_store_edit,
    console_errors,
    edit_weight,
    free_port,
    open_store,
    record_timing,
    see_rows,
    serve,
    sort_by_loss,
    write_marimo_app,
)

# marimo's own console noise, not the widget's
ALLOWED = [re.compile(r"Failed to load resource: .*(favicon|manifest)")]


@pytest.fixture(scope="module")
def marimo(host_tmp, env):
    app = write_marimo_app(host_tmp / "hosts_app.py")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "marimo",
        "run",
        str(app),
        "--headless",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-token",
        "--no-sandbox",
        "--no-skew-protection",
    ]
    with serve("marimo", cmd, env=env, cwd=host_tmp, url=f"http://127.0.0.1:{port}") as server:
        yield server


@pytest.fixture(scope="module")
def widget(marimo, page):
    t0 = time.monotonic()
    page.goto(marimo.url)
    root = page.locator(".ww-root")  # Playwright's CSS engine enters marimo's shadow root
    see_rows(root)
    record_timing("marimo", startup_s=marimo.startup_s, open_to_rows_s=time.monotonic() - t0)
    return root


def test_marimo_rows_sort_edit(page, widget, env):
    t0 = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    widget.screenshot(path=str(ARTIFACTS / "marimo-widget.png"))
    page.screenshot(path=str(ARTIFACTS / "marimo-page.png"))
    order = sort_by_loss(widget, open_store(env))
    rid = edit_weight(page, widget, 1, "2.5")
    assert rid == order[1]
    check_store_edit(env, rid, 2.5)
    widget.screenshot(path=str(ARTIFACTS / "marimo-widget-edited.png"))
    assert not console_errors(page.console_log, ALLOWED), page.console_log
    record_timing("marimo", steps_s=time.monotonic() - t0)


def test_marimo_class_panel_and_text(widget):
    check_class_panel(widget)
    check_readable(widget)
