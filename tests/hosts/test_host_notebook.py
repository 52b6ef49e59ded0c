"""Jupyter Notebook 7: a throw-away server, the one-cell host notebook opened at
``/notebooks/...`` and run with Shift+Enter; the edit is checked by a second
jupyter_client on the kernel and on the store reopened from disk."""

from __future__ import annotations

import time

import pytest

from .hostkit import (
    check_class_panel,
    check_readable,
    jupyter,
    open_jupyter_notebook,
    record_timing,
    see_rows,
    sort_and_edit,
)

HOST = "notebook7"


@pytest.fixture(scope="module")
def server(host_tmp, env):
    with jupyter("notebook", host_tmp, env) as s:
        yield s


@pytest.fixture(scope="module")
def kernel(server, page):
    t0 = time.monotonic()
    kc = open_jupyter_notebook(server, page, "notebooks/hosts.ipynb")
    record_timing(HOST, startup_s=server.startup_s, open_and_run_s=time.monotonic() - t0)
    yield kc
    kc.close()


@pytest.fixture(scope="module")
def widget(page, kernel):
    t0 = time.monotonic()
    root = page.locator(".jp-Cell .ww-root")
    see_rows(root)
    record_timing(HOST, run_to_rows_s=time.monotonic() - t0)
    return root


def test_notebook7_rows_sort_edit(page, widget, kernel, env):
    sort_and_edit(page, widget, env, HOST, kernel=kernel)


def test_notebook7_class_panel_and_text(widget):
    check_class_panel(widget)
    check_readable(widget)
