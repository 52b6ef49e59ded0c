"""marimo: ``marimo run`` serves a generated app file whose one cell shows the widget.
marimo has no Jupyter CSS variables and a line-height of 1.5 of its own, and renders
anywidgets in a shadow root: the widget must bring its own sizes and colours. The kernel
runs inside the marimo server, so the edit is checked on the store on disk."""

from __future__ import annotations

import sys
import time

import pytest

from .hostkit import (
    check_class_panel,
    check_readable,
    free_port,
    record_timing,
    see_rows,
    serve,
    sort_and_edit,
    write_marimo_app,
)


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
    sort_and_edit(page, widget, env, "marimo")


def test_marimo_class_panel_and_text(widget):
    check_class_panel(widget)
    check_readable(widget)
