"""The JS bundle is always fresh (issue 11 point 10): a source hash beside widget.js
tells a stale bundle from a fresh one; setup, the wheel build hook and the browser
tests rebuild or refuse a stale one instead of using it."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from pathlib import Path

import pytest

from .conftest import ROOT


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


jsbundle = load("_ww_jsbundle_test", ROOT / "scripts" / "jsbundle.py")


@pytest.fixture
def tree(tmp_path):
    """A copy of the sources and a built, stamped bundle."""
    for name in ("js", "package.json", "tsconfig.json"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    static = tmp_path / "weightwidget" / "static"
    static.mkdir(parents=True)
    (static / "widget.js").write_text("export default {}")
    (static / "widget.css").write_text("")
    jsbundle.stamp(tmp_path)
    return tmp_path


def test_the_repository_bundle_is_fresh():
    assert jsbundle.problem(ROOT) is None, "run npm run build"


def test_a_change_in_js_makes_the_bundle_stale(tree):
    assert jsbundle.problem(tree) is None
    (tree / "js" / "tests" / "extra.test.ts").write_text("// tests are not bundled")
    assert jsbundle.problem(tree) is None
    (tree / "js" / "format.ts").write_text((tree / "js" / "format.ts").read_text() + "\n// x\n")
    assert "stale" in jsbundle.problem(tree)
    with pytest.raises(jsbundle.StaleBundleError, match="stale.*npm run build"):
        jsbundle.require_fresh(tree)
    jsbundle.stamp(tree)
    assert jsbundle.problem(tree) is None
    (tree / "package.json").write_text((tree / "package.json").read_text() + " ")
    assert "stale" in jsbundle.problem(tree)


def test_missing_or_unstamped_bundles_are_not_fresh(tree):
    (tree / jsbundle.STAMP).unlink()
    assert "no source stamp" in jsbundle.problem(tree)
    (tree / jsbundle.BUNDLE).unlink()
    assert "is missing" in jsbundle.problem(tree)


def test_ensure_fresh_builds_only_a_stale_bundle(tree, monkeypatch):
    calls = []
    monkeypatch.setattr(jsbundle, "build", lambda root: calls.append(root))
    assert jsbundle.ensure_fresh(tree) is False and calls == []
    (tree / "js" / "rpc.ts").write_text("// changed")
    assert jsbundle.ensure_fresh(tree) is True and calls == [tree]


def test_the_wheel_build_hook_rebuilds_a_stale_bundle_that_exists(tree, monkeypatch):
    # hatchling is only present inside the isolated build env: stand in for its base class
    iface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
    iface.BuildHookInterface = type("BuildHookInterface", (), {})
    for name in (
        "hatchling",
        "hatchling.builders",
        "hatchling.builders.hooks",
        "hatchling.builders.hooks.plugin",
    ):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "hatchling.builders.hooks.plugin.interface", iface)
    shutil.copytree(ROOT / "scripts", tree / "scripts")
    hook_mod = load("_ww_hatch_build", ROOT / "scripts" / "hatch_build.py")
    built = []
    real = hook_mod._jsbundle

    def spy(root):
        module = real(root)
        module.build = lambda r: built.append(r)
        return module

    monkeypatch.setattr(hook_mod, "_jsbundle", spy)
    hook = hook_mod.JsBuildHook()
    hook.root = str(tree)
    monkeypatch.delenv("WEIGHTWIDGET_SKIP_JS", raising=False)
    hook.initialize("standard", {})
    assert built == []  # fresh: nothing to do
    (tree / "js" / "widget.ts").write_text("// changed")
    assert (tree / jsbundle.BUNDLE).exists()  # the old code skipped here
    hook.initialize("standard", {})
    assert built == [tree]


def test_setup_and_test_scripts_check_the_bundle():
    setup = (ROOT / "scripts" / "setup").read_text()
    assert "jsbundle.py --check" in setup and "jsbundle.py --force" in setup
    assert "[ ! -f weightwidget/static/widget.js ]" not in setup
    assert "jsbundle.py --check" in (ROOT / "scripts" / "test").read_text()
