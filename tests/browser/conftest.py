"""Browser fixtures: Debian's Chromium via Playwright and one JupyterLab server per
test module (startup ~3 s), following the recipe in ../shared/e2e (kernel-readiness
race, news pop-up, kernel dialog). A missing browser fails the run; it never skips."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = HERE / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we may be root; Playwright adds it too, the CLI does not
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def _jsbundle():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ww_jsbundle", ROOT / "scripts" / "jsbundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session", autouse=True)
def fresh_bundle() -> None:
    """Fail loudly on a missing or stale widget.js: never test an old bundle."""
    try:
        _jsbundle().require_fresh(ROOT)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} missing: apt-get install -y chromium "
            "(a missing browser must fail the browser tests, not skip them)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# --------------------------------------------------------------------------- jupyter
@dataclass
class JupyterServer:
    url: str
    token: str
    root: pathlib.Path
    runtime: pathlib.Path
    log: pathlib.Path
    proc: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)
    startup_s: float = 0.0

    def api(self, path: str, method: str = "GET", timeout: float = 5) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else None


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    for nb in HERE.glob("*.ipynb"):
        shutil.copy(nb, root / nb.name)
    port, token = free_port(), secrets.token_hex(16)
    runtime = tmp / "jupyter_runtime"
    env = dict(
        os.environ,
        # the kernel inherits this env: makes the repo's `weightwidget` importable
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        WW_STORE_DIR=str(tmp / "stores"),
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter_config"),
        JUPYTER_RUNTIME_DIR=str(runtime),
        IPYTHONDIR=str(tmp / "ipython"),
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        f"--LabApp.user_settings_dir={tmp / 'user_settings'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    news = tmp / "user_settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    log = tmp / "jupyter.log"
    logf = open(log, "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=logf, stderr=subprocess.STDOUT)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, runtime, log, proc, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited {proc.returncode}:\n{log.read_text()}")
            try:
                server.api("/api/status", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab not ready in 60 s:\n{log.read_text()}"
                    ) from None
                time.sleep(0.2)
        server.startup_s = time.monotonic() - t0
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.api("/api/shutdown", method="POST")
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logf.close()


# --------------------------------------------------------------------------- notebook
class Notebook:
    """An open notebook page plus a second client on the same kernel for checks."""

    def __init__(self, server: JupyterServer, page: Any, path: str) -> None:
        self.server, self.page, self.path = server, page, path
        self.panel = page.locator(".jp-NotebookPanel:visible")
        self.kc: Any = None

    def cell(self, i: int) -> Any:
        return self.panel.locator(".jp-Cell").nth(i)

    def run_cell(self, i: int) -> None:
        """Select cell i (command mode) and run it with Shift+Enter."""
        self.cell(i).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Shift+Enter")

    def wait_cell_done(self, i: int, timeout: float = 60_000) -> None:
        from playwright.sync_api import expect

        expect(self.cell(i).locator(".jp-InputPrompt").first).to_have_text(
            re.compile(r"\[\d+\]"), timeout=timeout
        )

    def connect_kernel(self) -> None:
        """A second jupyter_client on the notebook's kernel: ask it questions directly."""
        from jupyter_client import BlockingKernelClient

        sessions = self.server.api("/api/sessions")
        kid = next(s["kernel"]["id"] for s in sessions if s["path"] == self.path)
        cf = wait_until(
            lambda: next(iter(self.server.runtime.glob(f"kernel-{kid}.json")), None),
            "kernel connection file",
        )
        kc = BlockingKernelClient(connection_file=str(cf))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=30)
        self.kc = kc

    def kernel(self, code: str, timeout: float = 30) -> Any:
        """Run ``code`` in the notebook's kernel; it must print one JSON line last."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict) -> None:
            t = msg["msg_type"]
            if t == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif t == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        assert reply["content"]["status"] == "ok", "".join(errors) or reply
        return json.loads("".join(out).strip().splitlines()[-1])


def open_notebook(server: JupyterServer, page: Any, path: str) -> Notebook:
    from playwright.sync_api import expect

    page.add_locator_handler(
        page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
        lambda loc: loc.locator(".jp-Dialog-button.jp-mod-accept").click(),
    )
    page.goto(f"{server.url}/lab/tree/{path}?token={server.token}")
    nb = Notebook(server, page, path)
    expect(nb.panel).to_have_count(1, timeout=60_000)
    expect(nb.panel.locator(".jp-Toolbar .jp-KernelName")).to_have_text(
        "Python 3 (ipykernel)", timeout=60_000
    )
    expect(nb.panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=60_000
    )
    wait_until(
        lambda: (
            [(s["path"], s["kernel"]["execution_state"]) for s in server.api("/api/sessions")]
            == [(path, "idle")]
        ),
        "server-side session idle",
    )
    nb.connect_kernel()
    return nb


def started_notebook(server: JupyterServer, page: Any, path: str, *, cells: int = 2):
    """Open ``path`` and run its first ``cells`` cells (set-up, then the widget); yield it.

    The set-up cell is waited for (building a table can take a while); the
    widget cell is left running so a test can watch its first rows appear.
    A module fixture ``yield from``-s this, so the kernel's channels close after.
    """
    nb = open_notebook(server, page, path)
    if cells >= 1:
        nb.run_cell(0)
        nb.wait_cell_done(0, timeout=120_000)
    if cells >= 2:
        nb.run_cell(1)
    yield nb
    if nb.kc is not None:
        nb.kc.stop_channels()


def widget(nb: Notebook) -> Any:
    """The widget's root in the notebook's second cell."""
    return nb.cell(1).locator(".ww-root")


def row(nb: Notebook, position: int) -> Any:
    """The table row at ``position`` once its data has arrived (not a placeholder)."""
    return widget(nb).locator(
        f'.ww-row[data-position="{position}"]:not(.ww-loading):not(.ww-stale)'
    )


@pytest.fixture(scope="module")
def lab_page(browser, jupyter_server, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    console: list[str] = []
    pg.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    pg.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.console_log = console  # type: ignore[attr-defined]
    pg.js_dialogs = dialogs  # type: ignore[attr-defined]
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{request.module.__name__}-console.log").write_text("\n".join(console))
    ctx.close()


@pytest.fixture(autouse=True)
def _failure_screenshot(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "lab_page" in request.fixturenames:
        ARTIFACTS.mkdir(exist_ok=True)
        pg = request.getfixturevalue("lab_page")
        with contextlib.suppress(Exception):
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
