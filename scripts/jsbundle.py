"""The widget's JS bundle and the hash of the sources it was built from.

The bundle (weightwidget/static/widget.js and widget.css) is git-ignored and built
by esbuild. Beside it, ``widget.js.sources`` holds a hash of everything the build
reads (js/ without its tests, package.json, package-lock.json, tsconfig.json), so
a bundle that no longer matches its sources is found and rebuilt instead of
shipped or tested (scripts/setup, the wheel build hook, the browser tests).

    python scripts/jsbundle.py           # build when missing or stale, else nothing
    python scripts/jsbundle.py --force   # build
    python scripts/jsbundle.py --check   # exit 1 when missing or stale
    python scripts/jsbundle.py --stamp   # record the current sources (npm run build does)
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path("weightwidget") / "static" / "widget.js"
CSS = Path("weightwidget") / "static" / "widget.css"
STAMP = Path("weightwidget") / "static" / "widget.js.sources"
FILES = ("package.json", "package-lock.json", "tsconfig.json")


class StaleBundleError(RuntimeError):
    """The bundle is missing or was built from other sources than js/ holds now."""


def sources(root: Path = ROOT) -> list[Path]:
    """Every file the bundle is built from, sorted (js/tests/ is left out)."""
    js = root / "js"
    out = [p for p in js.rglob("*") if p.is_file() and "tests" not in p.relative_to(js).parts[:1]]
    out += [root / f for f in FILES if (root / f).exists()]
    return sorted(out)


def source_hash(root: Path = ROOT) -> str:
    """sha256 over the sources' relative paths and contents."""
    h = hashlib.sha256()
    for p in sources(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def problem(root: Path = ROOT) -> str | None:
    """Why the bundle cannot be used as is, or None when it is fresh."""
    if not (root / "js").is_dir():  # an unpacked sdist without sources: trust the bundle
        return None if (root / BUNDLE).exists() else f"{BUNDLE} is missing and js/ is absent"
    for f in (BUNDLE, CSS):
        if not (root / f).exists():
            return f"{f} is missing"
    stamp = root / STAMP
    if not stamp.exists():
        return f"{BUNDLE} has no source stamp ({STAMP}): it may predate the current js/"
    if stamp.read_text().strip() != source_hash(root):
        return (
            f"{BUNDLE} is stale: js/ (or package.json, package-lock.json) changed since "
            "it was built"
        )
    return None


def stamp(root: Path = ROOT, digest: str | None = None) -> None:
    """Record the sources the bundle was just built from."""
    (root / STAMP).write_text((digest or source_hash(root)) + "\n")


def build(root: Path = ROOT) -> None:
    """Bundle js/ with esbuild (npm ci first when node_modules is missing) and stamp it."""
    npm = shutil.which("npm")
    if npm is None:
        raise StaleBundleError(
            f"{problem(root)}; npm was not found to rebuild it. Install node and npm, "
            "then run `npm ci && npm run build`."
        )
    digest = source_hash(root)  # the sources as they are when the build starts
    if not (root / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=root, check=True)
    subprocess.run([npm, "run", "--silent", "build:bundle"], cwd=root, check=True)
    stamp(root, digest)


def ensure_fresh(root: Path = ROOT) -> bool:
    """Build when the bundle is missing or stale; return whether it built."""
    if problem(root) is None:
        return False
    build(root)
    return True


def require_fresh(root: Path = ROOT) -> None:
    """Raise :class:`StaleBundleError` unless the bundle matches js/ (for test fixtures)."""
    why = problem(root)
    if why is not None:
        raise StaleBundleError(f"{why}. Rebuild it: npm run build (or scripts/setup)")


def main(argv: list[str]) -> int:
    if "--stamp" in argv:
        stamp()
        return 0
    if "--check" in argv:
        why = problem()
        if why:
            print(why, file=sys.stderr)
            return 1
        return 0
    if "--force" in argv:
        build()
        print(f"built {BUNDLE}")
        return 0
    print(f"built {BUNDLE}" if ensure_fresh() else f"{BUNDLE} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
