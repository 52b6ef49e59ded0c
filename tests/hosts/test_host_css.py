"""The host-scoping rules of js/style.css, checked on the source (no browser): every rule
is scoped under ``.ww-root``, every Jupyter variable has a fallback for hosts without
them (marimo, Voila's plain templates, a plain page), and the root sets the inherited
text properties a host would otherwise impose (marimo's line-height of 1.5 hid the last
classes of the class panel). The browser tests in this folder show the result."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CSS = ROOT / "js" / "style.css"


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def rules(css: str) -> list[tuple[str, str]]:
    """(selector list, declarations) of every style rule, descending into conditional
    at-rules (@media, @supports, ...) and skipping @keyframes and @font-face bodies."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(css):
        open_ = css.find("{", i)
        if open_ < 0:
            assert not css[i:].strip(), f"text after the last rule: {css[i:].strip()[:60]!r}"
            break
        prelude = css[i:open_].strip()
        depth, j = 1, open_ + 1
        while depth:
            assert j < len(css), f"unbalanced braces after {prelude!r}"
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        body = css[open_ + 1 : j - 1]
        if prelude.startswith(("@keyframes", "@-webkit-keyframes", "@font-face")):
            pass
        elif prelude.startswith("@"):
            out.extend(rules(body))
        else:
            out.append((prelude, body))
        i = j
    return out


def var_calls(text: str) -> list[str]:
    """The inside of every ``var(...)``, with nested parentheses kept."""
    calls = []
    for m in re.finditer(r"\bvar\(", text):
        depth, j = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        calls.append(text[m.end() : j - 1])
    return calls


def jupyter_vars_without_fallback(text: str) -> list[str]:
    """``var(--jp-...)`` calls with no fallback, or an empty one."""
    bad = []
    for inner in var_calls(text):
        name, _, fallback = inner.partition(",")
        if name.strip().startswith("--jp-") and not fallback.strip():
            bad.append(f"var({inner})")
    return bad


def unscoped_selectors(css: str) -> list[str]:
    """Selectors that do not start at the widget's root class."""
    bad = []
    for prelude, _ in rules(css):
        for selector in prelude.split(","):
            s = selector.strip()
            if not re.match(r"\.ww-root(?![\w-])", s):
                bad.append(s)
    return bad


@pytest.fixture(scope="module")
def css() -> str:
    return strip_comments(CSS.read_text())


def test_every_jupyter_variable_has_a_fallback(css):
    assert "var(--jp-" in css  # the check below has something to check
    bad = jupyter_vars_without_fallback(css)
    assert not bad, (
        f"{CSS.name}: Jupyter variables without a fallback (hosts without Jupyter's theme "
        f"get nothing): {bad}; write var(--jp-name, value)"
    )


def test_page_code_uses_no_jupyter_variable_without_fallback():
    sources = [p for p in (ROOT / "js").rglob("*.ts") if "tests" not in p.parts]
    assert sources
    bad = {p.name: v for p in sources if (v := jupyter_vars_without_fallback(p.read_text()))}
    assert not bad, f"Jupyter variables without a fallback in inline styles: {bad}"


def test_every_rule_is_scoped_under_the_root(css):
    assert len(rules(css)) > 20
    bad = unscoped_selectors(css)
    assert not bad, (
        f"{CSS.name}: selectors not scoped under .ww-root (they could style the host's page, "
        f"and the host's rules of equal weight win over them): {bad}"
    )


def test_root_sets_its_own_text_properties(css):
    root = " ".join(body for prelude, body in rules(css) if prelude.strip() == ".ww-root")
    props = {
        k.strip(): v.strip()
        for k, _, v in (d.partition(":") for d in root.split(";") if ":" in d)
        if not k.strip().startswith("--")
    }
    needed = ["font-family", "font-size", "font-weight", "line-height", "color", "background"]
    missing = [p for p in needed if p not in props]
    assert not missing, f".ww-root must set {missing}: the host's values would be inherited"
    assert props["line-height"] not in ("inherit", "normal"), props["line-height"]
    star = [prelude for prelude, body in rules(css) if "box-sizing" in body]
    assert any(".ww-root *" in p for p in star), "box-sizing for every element in the widget"


# the checks themselves, on small examples: each must catch what it is for
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a { color: var(--jp-ui-font-color1); }", ["var(--jp-ui-font-color1)"]),
        ("a { color: var(--jp-x, ); }", ["var(--jp-x, )"]),
        ("a { color: var(--jp-x, #222); }", []),
        ("a { color: var(--jp-x, var(--jp-y)); }", ["var(--jp-y)"]),
        ("a { color: var(--jp-x, var(--jp-y, red)); }", []),
        ("a { color: var(--ww-fg); }", []),
        ("a { background: color-mix(in srgb, var(--jp-b) 16%, transparent); }", ["var(--jp-b)"]),
    ],
)
def test_fallback_check_catches(text, expected):
    assert jupyter_vars_without_fallback(text) == expected


def test_scope_check_catches():
    css = strip_comments(
        ".ww-root { color: red; }\n.ww-root .ww-a, .ww-b { x: 1; }\n.ww-rooted { y: 2; }\n"
        "/* c */ @keyframes k { to { opacity: 0; } }\n"
        "@media (max-width: 400px) { .ww-c { z: 3; } .ww-root .ww-d { z: 4; } }\n"
        "button { w: 5; }"
    )
    assert unscoped_selectors(css) == [".ww-b", ".ww-rooted", ".ww-c", "button"]
