"""Hatchling build hook: bundle js/ into weightwidget/static/widget.js with esbuild.

The bundle is git-ignored and shipped as a wheel artifact. It is built when
missing; set WEIGHTWIDGET_SKIP_JS=1 to skip (for example when only Python changed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class JsBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        root = Path(self.root)
        bundle = root / "weightwidget" / "static" / "widget.js"
        if os.environ.get("WEIGHTWIDGET_SKIP_JS") or bundle.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "weightwidget/static/widget.js is missing and npm was not found; "
                "install node and npm, or run `npm ci && npm run build` first."
            )
        if not (root / "node_modules").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
        subprocess.run([npm, "run", "build"], cwd=root, check=True)
