"""Write js/protocol.gen.ts from weightwidget/_protocol.py (the page-kernel contract).

python scripts/gen_protocol.py          # write the file
python scripts/gen_protocol.py --check  # exit 1 if the file is stale (CI, tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "js" / "protocol.gen.ts"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from weightwidget._protocol import typescript

    text = typescript()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python scripts/gen_protocol.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
