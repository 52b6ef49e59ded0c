"""Fixtures for the host smoke tests: Debian's Chromium via Playwright (never a
downloaded browser; a missing one fails the run, it never skips), a temp dir and
environment per host, and a page that records its console and leaves a screenshot
when a test fails."""

from __future__ import annotations

import contextlib
import gc
import os
import pathlib

import pytest

from .hostkit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, host_env

HERE = pathlib.Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).parents and "browser" in item.fixturenames:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def bundle() -> pathlib.Path:
    """The widget bundle every host serves; without it each page would wait in vain."""
    path = HERE.parents[1] / "weightwidget" / "static" / "widget.js"
    if not path.exists():
        pytest.fail(f"{path} missing: run `npm run build` (scripts/setup does)", pytrace=False)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="module")
def browser(bundle):
    """Chromium for one host module, closed after it.

    Playwright's sync API allows one instance per thread. When tests/browser's
    session-wide Chromium is already running in this process, the hosts use it; a
    browser of our own is closed at the end of the module, so that tests/browser can
    start its own after us."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} missing: apt-get install -y chromium "
            "(a missing browser must fail the host tests, not skip them)"
        )
    from playwright.sync_api import Browser, Error, sync_playwright

    try:
        pw = sync_playwright().start()
    except Error as e:
        if "asyncio loop" not in str(e):
            raise
        running = [o for o in gc.get_objects() if isinstance(o, Browser) and o.is_connected()]
        if not running:
            raise
        yield running[0]
        return
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def host_tmp(tmp_path_factory: pytest.TempPathFactory, request) -> pathlib.Path:
    """A temp dir for one host: its server's files, config dirs, the table's store."""
    return tmp_path_factory.mktemp(request.module.__name__)


@pytest.fixture(scope="module")
def env(host_tmp: pathlib.Path) -> dict[str, str]:
    return host_env(host_tmp)


@pytest.fixture(scope="module")
def page(browser, request):
    """One page per host module; console messages in ``page.console_log``, saved to
    artifacts/<module>-console.log."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"[pageerror] {e.stack or e}"))
    pg.console_log = console  # type: ignore[attr-defined]
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{request.module.__name__}-console.log").write_text("\n".join(console))
    ctx.close()


@pytest.fixture(autouse=True)
def _failure_screenshot(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "page" in request.fixturenames:
        ARTIFACTS.mkdir(exist_ok=True)
        pg = request.getfixturevalue("page")
        with contextlib.suppress(Exception):
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
