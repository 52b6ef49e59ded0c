"""Voila: ``voila`` serves a generated one-cell notebook as a dashboard (its default lab
template, no code cells shown). The edit is checked twice: by a second jupyter_client
on the kernel Voila started for the page, and on the store reopened from disk."""

from __future__ import annotations

import re
import sys
import time

import pytest

from .hostkit import (
    KernelClient,
    check_class_panel,
    check_readable,
    free_port,
    record_timing,
    see_rows,
    serve,
    sort_and_edit,
    wait_until,
    write_notebook,
)

# Voila's own console noise, not the widget's: its lab template links Font Awesome from a
# CDN (no network here), and it loads every installed lab extension, among them Notebook
# 7's, which needs a newer JupyterLab than the one Voila 0.5 bundles.
ALLOWED = [
    re.compile(r"Failed to load resource: net::ERR_NAME_NOT_RESOLVED"),
    re.compile(r"shared module is not a function.*\n?.*docregistry", re.S),
]


@pytest.fixture(scope="module")
def voila(host_tmp, env):
    write_notebook(host_tmp / "hosts.ipynb")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "voila",
        "hosts.ipynb",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
    ]
    url = f"http://127.0.0.1:{port}"
    # the readiness probe must not open the notebook: that would start a kernel
    with serve(
        "voila", cmd, env=env, cwd=host_tmp, url=url, ready_path="/voila/static/voila.js"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def widget(voila, page):
    t0 = time.monotonic()
    page.goto(voila.url)
    root = page.locator(".ww-root")
    see_rows(root)
    record_timing("voila", startup_s=voila.startup_s, open_to_rows_s=time.monotonic() - t0)
    return root


@pytest.fixture(scope="module")
def kernel(voila, host_tmp, widget):
    """The kernel Voila runs for the page (its connection file is in Voila's temp dir)."""
    cf = wait_until(
        lambda: next(iter(host_tmp.glob("voila_*/kernel-*.json")), None),
        f"a kernel connection file of Voila's under {host_tmp}",
    )
    kc = KernelClient(cf)
    yield kc
    kc.close()


def test_voila_rows_sort_edit(page, widget, kernel, env):
    sort_and_edit(page, widget, env, "voila", kernel=kernel, allowed_errors=ALLOWED)


def test_voila_class_panel_and_text(widget):
    check_class_panel(widget)
    check_readable(widget)
