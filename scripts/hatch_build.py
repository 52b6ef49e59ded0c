"""Hatchling build hook: bundle js/ into weightwidget/static/widget.js with esbuild.

The bundle is git-ignored and shipped as a wheel artifact. It is rebuilt whenever
js/ changed since it was built (a source hash stamped beside it, see
scripts/jsbundle.py), not only when it is missing. WEIGHTWIDGET_SKIP_JS=1 skips
the check (scripts/setup has just built it).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _jsbundle(root: Path):
    spec = importlib.util.spec_from_file_location("_ww_jsbundle", root / "scripts" / "jsbundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class JsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if os.environ.get("WEIGHTWIDGET_SKIP_JS"):
            return
        root = Path(self.root)
        _jsbundle(root).ensure_fresh(root)
