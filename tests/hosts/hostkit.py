"""What the host smoke tests share: the app every host shows, server processes, and the
checks a user would make (rows, sort, an edit, the class panel, readable text).

The same table is shown in every host: 2,000 rows, ten CIFAR-10 class names with
unequal counts, a float ``loss`` and a short text column, in a store under the test's
temporary directory (``WW_HOST_STORE``), so the test process can reopen it from disk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pathlib
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from playwright.sync_api import Locator, Page, expect

import weightwidget as ww

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = HERE / "artifacts"


def _load_browser_helpers() -> Any:
    """tests/browser/conftest.py, loaded under its own name (both folders have a
    ``conftest`` module, so a plain import would pick whichever came first)."""
    path = ROOT / "tests" / "browser" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_ww_browser_conftest", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_browser = _load_browser_helpers()
CHROMIUM: str = _browser.CHROMIUM
CHROMIUM_ARGS: list[str] = _browser.CHROMIUM_ARGS
free_port = _browser.free_port
wait_until = _browser.wait_until

N_ROWS = 2_000
CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]

# The code every host runs; it ends with the widget as the cell's value.
APP_CODE = f"""\
import os

import numpy as np

import weightwidget as ww

classes = np.array({CLASSES!r})
rng = np.random.default_rng(0)
p = np.arange(10, 0, -1, dtype=float)  # unequal classes: airplane most, truck least
labels = classes[rng.choice(10, size={N_ROWS}, p=p / p.sum())]
t = ww.WeightTable.from_arrays(
    labels=labels,
    name="hosts",
    store=os.environ["WW_HOST_STORE"],
    loss=np.round(rng.gamma(2.0, 1.0, size={N_ROWS}), 4),
    note=np.array([f"sample {{i}}" for i in range({N_ROWS})]),
)
w = ww.WeightWidget(t)
w"""


def write_notebook(path: pathlib.Path) -> pathlib.Path:
    """A one-cell notebook (for JupyterLab, Notebook 7 and Voila) running APP_CODE."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(APP_CODE)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def write_marimo_app(path: pathlib.Path) -> pathlib.Path:
    """A marimo app file with one cell running APP_CODE (the widget is its output)."""
    body = "\n".join("    " + line if line else "" for line in APP_CODE.splitlines())
    path.write_text(
        "import marimo\n\n"
        'app = marimo.App(width="full")\n\n\n'
        "@app.cell\n"
        "def _():\n"
        f"{body}\n"
        "    return (t, w)\n\n\n"
        'if __name__ == "__main__":\n'
        "    app.run()\n"
    )
    return path


# --------------------------------------------------------------------------- processes
def host_env(tmp: pathlib.Path) -> dict[str, str]:
    """Environment for a host server and its kernels: this checkout's weightwidget first on
    the path, the store under ``tmp``, Jupyter's config and runtime dirs isolated."""
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        WW_HOST_STORE=str(tmp / "store"),
        JUPYTER_CONFIG_DIR=str(tmp / "jupyter_config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "jupyter_runtime"),
        JUPYTER_DATA_DIR=os.environ.get("JUPYTER_DATA_DIR", str(tmp / "jupyter_data")),
        IPYTHONDIR=str(tmp / "ipython"),
        TMPDIR=str(tmp),  # Voila keeps its kernels' connection files in a temp dir
        MARIMO_SKIP_UPDATE_CHECK="1",
    )


@dataclass
class Server:
    """A host server started for one test module; ``log`` is its stdout and stderr."""

    name: str
    url: str
    proc: subprocess.Popen
    log: pathlib.Path
    env: dict[str, str]
    token: str = ""
    startup_s: float = 0.0

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def api(self, path: str, method: str = "GET", timeout: float = 5) -> Any:
        """A Jupyter REST call with the server's token."""
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else None


@contextlib.contextmanager
def serve(
    name: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: pathlib.Path,
    url: str,
    ready_path: str = "/",
    token: str = "",
    timeout: float = 90,
) -> Iterator[Server]:
    """Start ``cmd``, wait until ``url + ready_path`` answers, stop it on exit.

    A server that exits or does not answer in ``timeout`` seconds fails the test with its
    log, so an unusable host shows its own error message."""
    log = cwd / f"{name}.log"
    logf = open(log, "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT)
    server = Server(name, url, proc, log, env, token)
    try:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"token {token}"} if token else {}
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {proc.returncode} before serving:\n{server.log_text()}"
                )
            try:
                req = urllib.request.Request(url + ready_path, headers=headers)
                with urllib.request.urlopen(req, timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{name} did not answer {url + ready_path} in {timeout:.0f} s:\n"
                        f"{server.log_text()}"
                    ) from None
                time.sleep(0.1)
        server.startup_s = time.monotonic() - t0
        yield server
    finally:
        if token:
            with contextlib.suppress(Exception):
                server.api("/api/shutdown", method="POST")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logf.close()


def jupyter_cmd(app: str, *, root: pathlib.Path, port: int, token: str) -> list[str]:
    """``python -m jupyterlab`` or ``python -m notebook`` on 127.0.0.1, no browser."""
    return [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
    ]


def quiet_jupyter_settings(env: dict[str, str]) -> None:
    """No "Jupyter news" pop-up or update check over the page (shared/e2e pitfalls)."""
    d = pathlib.Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab"
    (d / "apputils-extension").mkdir(parents=True, exist_ok=True)
    (d / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@contextlib.contextmanager
def jupyter(app: str, tmp: pathlib.Path, env: dict[str, str]) -> Iterator[Server]:
    """A throw-away JupyterLab (``app="jupyterlab"``) or Notebook 7 (``"notebook"``)
    server on a free port, serving ``tmp`` with the host notebook in it."""
    write_notebook(tmp / "hosts.ipynb")
    quiet_jupyter_settings(env)
    port, token = free_port(), secrets.token_hex(16)
    cmd = jupyter_cmd(app, root=tmp, port=port, token=token)
    url = f"http://127.0.0.1:{port}"
    with serve(app, cmd, env=env, cwd=tmp, url=url, ready_path="/api/status", token=token) as s:
        yield s


def open_jupyter_notebook(server: Server, page: Page, url_path: str) -> KernelClient:
    """Open the host notebook at ``url_path`` (``lab/tree/...`` or ``notebooks/...``), wait
    out the kernel-readiness race (kernel name, then the idle indicator, then the server's
    session idle), run its cell, and return a second client on its kernel."""
    page.add_locator_handler(
        page.locator(".jp-Dialog").filter(has_text="Select Kernel"),
        lambda loc: loc.locator(".jp-Dialog-button.jp-mod-accept").click(),
    )
    page.goto(f"{server.url}/{url_path}?token={server.token}")
    panel = page.locator(".jp-NotebookPanel:visible")
    expect(panel).to_have_count(1, timeout=60_000)
    expect(page.locator(".jp-KernelName:visible").first).to_have_text(
        "Python 3 (ipykernel)", timeout=60_000
    )
    expect(page.locator(".jp-Notebook-ExecutionIndicator:visible").first).to_have_attribute(
        "data-status", "idle", timeout=60_000
    )
    wait_until(
        lambda: (
            [(s["path"], s["kernel"]["execution_state"]) for s in server.api("/api/sessions")]
            == [("hosts.ipynb", "idle")]
        ),
        "the server's session idle",
    )
    kid = server.api("/api/sessions")[0]["kernel"]["id"]
    runtime = pathlib.Path(server.env["JUPYTER_RUNTIME_DIR"])
    cf = wait_until(
        lambda: next(iter(runtime.glob(f"kernel-{kid}.json")), None),
        "the kernel's connection file",
    )
    kc = KernelClient(cf)
    # console errors count from here: the widget's, not those of the host's own start-up
    page.console_mark = len(page.console_log)  # type: ignore[attr-defined]
    cell = panel.locator(".jp-Cell").first
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    return kc


class KernelClient:
    """A second jupyter_client on a host's kernel, to ask it what it sees."""

    def __init__(self, connection_file: pathlib.Path) -> None:
        from jupyter_client import BlockingKernelClient

        self.kc = BlockingKernelClient(connection_file=str(connection_file))
        self.kc.load_connection_file()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=30)

    def run(self, code: str, timeout: float = 30) -> Any:
        """Run ``code`` in the kernel; it must print one JSON line last."""
        out: list[str] = []
        errors: list[str] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=timeout)
        assert reply["content"]["status"] == "ok", "".join(errors) or reply
        return json.loads("".join(out).strip().splitlines()[-1])

    def close(self) -> None:
        self.kc.stop_channels()


# --------------------------------------------------------------------------- the widget
def row(root: Locator, position: int) -> Locator:
    """The loaded row at a view position (not a placeholder, not stale)."""
    return root.locator(f'.ww-row[data-position="{position}"]:not(.ww-loading):not(.ww-stale)')


def shown_rows(root: Locator, n: int) -> list[int]:
    return [int(row(root, i).get_attribute("data-row")) for i in range(n)]


def open_store(env: dict[str, str]) -> ww.WeightTable:
    """The host's store (``env["WW_HOST_STORE"]``) reopened from disk in the test process."""
    return ww.WeightTable.open(env["WW_HOST_STORE"])


def see_rows(root: Locator) -> None:
    """The first rows are on screen with the table's row count."""
    expect(row(root, 0)).to_be_visible(timeout=60_000)
    expect(root.locator(".ww-counts")).to_contain_text(f"{N_ROWS:,} of {N_ROWS:,} rows match")
    assert row(root, 0).get_attribute("data-row") == "0"
    names = root.locator(".ww-hcell .ww-hname").all_inner_texts()
    assert names[:3] == ["row", "label", "weight"] and "loss" in names, names


def sort_by_loss(root: Locator, disk: ww.WeightTable) -> list[int]:
    """Click the ``loss`` header: rows come in ascending loss order. Returns the ids shown."""
    header = root.locator(".ww-hcell", has_text="loss")
    header.click()
    expect(header.locator(".ww-sort")).to_have_text("▲")
    expected = disk.sort_order("loss")[:5].tolist()
    wait_until(lambda: shown_rows(root, 5) == expected, "rows sorted by loss ascending")
    return expected


def edit_weight(page: Page, root: Locator, position: int, text: str) -> int:
    """Double-click the weight cell at ``position``, type ``text``, press Enter, as a user
    does. Returns the row id edited once the page shows the new weight."""
    r = row(root, position)
    rid = int(r.get_attribute("data-row"))
    cell = r.locator(".ww-role-weight")
    cell.dblclick()
    editor = cell.locator("input.ww-edit")
    expect(editor).to_be_focused()
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    expect(editor).to_have_count(0)
    expect(cell).to_have_text(text)
    return rid


def check_store_edit(env: dict[str, str], rid: int, value: float) -> ww.WeightTable:
    """The store on disk, reopened here, has the edit as revision 1 and nothing else."""
    disk = wait_until(
        lambda: (t := open_store(env)).revision == 1 and t, "revision 1 in the store on disk"
    )
    expected = np.ones(N_ROWS)
    expected[rid] = value
    np.testing.assert_array_equal(disk.weights, expected)
    return disk


def sort_and_edit(
    page: Page,
    root: Locator,
    env: dict[str, str],
    host: str,
    *,
    kernel: KernelClient | None = None,
    allowed_errors: Sequence[re.Pattern[str]] = (),
) -> None:
    """The smoke steps after the first rows: screenshot, sort by ``loss`` (the kernel's
    traits follow when ``kernel`` is given), edit the weight of the second row shown, and
    check the edit in the kernel and on disk; no console errors but the host's own known
    ones (``allowed_errors``; in Jupyter hosts, those logged before the cell ran are
    the host's). Screenshots go to artifacts/<host>-*.png."""
    t0 = time.monotonic()
    ARTIFACTS.mkdir(exist_ok=True)
    root.screenshot(path=str(ARTIFACTS / f"{host}-widget.png"))
    order = sort_by_loss(root, open_store(env))
    if kernel is not None:
        state = kernel.run("import json; print(json.dumps([w.sort_by, w.sort_ascending]))")
        assert state == ["loss", True], state
    rid = edit_weight(page, root, 1, "2.5")
    assert rid == order[1], (rid, order)
    if kernel is not None:
        seen = kernel.run(f"print(json.dumps([t.revision, float(t.weights[{rid}]), w.revision]))")
        assert seen == [1, 2.5, 1], f"the kernel sees {seen}, not revision 1 with weight 2.5"
    check_store_edit(env, rid, 2.5)
    root.screenshot(path=str(ARTIFACTS / f"{host}-widget-edited.png"))
    page.screenshot(path=str(ARTIFACTS / f"{host}-page.png"))
    since = getattr(page, "console_mark", 0)
    errors = console_errors(page.console_log[since:], allowed_errors)  # type: ignore[attr-defined]
    assert not errors, "\n".join(errors)
    record_timing(host, steps_s=time.monotonic() - t0)


# Contrast of an element's text against the first opaque background behind it (across
# shadow roots), per WCAG 2: 4.5 is the minimum for body text, 3 for large text / UI.
_CONTRAST_JS = """
(el) => {
  const parse = (c) => {
    let m = c.match(/^rgba?\\(([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = c.match(/^color\\(srgb ([^)]+)\\)$/);
    if (m) {
      const p = m[1].split(/[ /]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    throw new Error('unparsed colour ' + c);
  };
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const up = (n) => n.parentElement || (n.getRootNode() && n.getRootNode().host) || null;
  const layers = [];
  for (let n = el; n; n = up(n)) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg[3] > 0) layers.push(bg);
    if (bg[3] >= 1) break;
  }
  let bg = [255, 255, 255, 1];  // the canvas behind an all-transparent chain
  for (const layer of layers.reverse()) bg = over(layer, bg);
  const fg = over(parse(getComputedStyle(el).color), bg);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  return {
    ratio: (hi + 0.05) / (lo + 0.05),
    color: getComputedStyle(el).color,
    background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')',
  };
}
"""

# what must be readable: (selector, minimum contrast)
READABLE = [
    (".ww-row .ww-kind-string", 4.5),  # a text cell
    (".ww-row .ww-kind-numeric.ww-role-data", 4.5),  # a number cell
    (".ww-row .ww-role-weight", 4.5),  # a weight
    (".ww-hcell.ww-role-data .ww-hname", 4.5),  # a column header
    (".ww-row .ww-role-row", 3.0),  # row ids and their header are secondary text
    (".ww-hcell.ww-role-row .ww-hname", 3.0),
    (".ww-class-name", 4.5),  # a class in the side panel
    (".ww-filter", 4.5),  # the filter box
    (".ww-btn:not(:disabled)", 4.5),  # a button
    (".ww-counts", 3.0),  # secondary text
    (".ww-class-nums", 3.0),
]


def check_readable(root: Locator) -> dict[str, float]:
    """Every kind of text in the widget stands out from its background. Returns the
    contrast ratio per selector."""
    ratios: dict[str, float] = {}
    low: list[str] = []
    for selector, minimum in READABLE:
        c = root.locator(selector).first.evaluate(_CONTRAST_JS)
        ratios[selector] = round(c["ratio"], 2)
        if c["ratio"] < minimum:
            low.append(f"{selector}: {c['color']} on {c['background']} = {c['ratio']:.2f}")
    assert not low, "text hard to read (contrast below 4.5, or 3 for secondary):\n" + "\n".join(low)
    return ratios


_CLASS_PANEL_JS = """
(root) => {
  const list = root.querySelector('.ww-classes');
  const side = root.querySelector('.ww-side');
  const box = (e) => { const r = e.getBoundingClientRect();
    return {top: r.top, bottom: r.bottom, left: r.left, right: r.right}; };
  return {
    list: box(list), side: box(side),
    listScroll: [list.scrollHeight, list.clientHeight],
    lineHeight: getComputedStyle(list).lineHeight,
    classes: [...list.querySelectorAll('.ww-class')].map((c) => {
      const name = c.querySelector('.ww-class-name');
      return { value: c.dataset.value, box: box(c), name: box(name),
               nameScroll: [name.scrollWidth, name.clientWidth] };
    }),
  };
}
"""


def check_class_panel(root: Locator) -> dict[str, Any]:
    """All ten classes are in the side panel, each row entirely inside the list and the
    panel (none hidden below the fold or behind a scrollbar), no name cut short."""
    expect(root.locator(".ww-class")).to_have_count(len(CLASSES))
    info = root.evaluate(_CLASS_PANEL_JS)
    assert sorted(c["value"] for c in info["classes"]) == sorted(CLASSES), info["classes"]
    eps = 0.5
    clipped = [
        c["value"]
        for c in info["classes"]
        if not all(
            c["box"]["top"] >= area["top"] - eps
            and c["box"]["bottom"] <= area["bottom"] + eps
            and c["box"]["left"] >= area["left"] - eps
            and c["box"]["right"] <= area["right"] + eps
            for area in (info["list"], info["side"])
        )
    ]
    assert not clipped, (
        f"classes {clipped} are clipped by the class list or side panel "
        f"(list {info['list']}, panel {info['side']}, line-height {info['lineHeight']})"
    )
    scroll_h, client_h = info["listScroll"]
    assert scroll_h <= client_h + 1, f"the class list scrolls ({scroll_h} > {client_h} px)"
    cut = [c["value"] for c in info["classes"] if c["nameScroll"][0] > c["nameScroll"][1] + 1]
    assert not cut, f"class names cut short: {cut}"
    return info


def console_errors(messages: list[str], allowed: Sequence[re.Pattern[str]]) -> list[str]:
    """Console errors and page errors, less the host's own known noise in ``allowed``."""
    return [
        m
        for m in messages
        if m.startswith(("[error]", "[pageerror]")) and not any(p.search(m) for p in allowed)
    ]


def record_timing(host: str, **figures: float) -> None:
    """Add figures to this host's entry in artifacts/timings.json."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "timings.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(host, {}).update({k: round(v, 2) for k, v in figures.items()})
    path.write_text(json.dumps(data, indent=1, sort_keys=True))
