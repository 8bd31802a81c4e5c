"""`python -m meerkat.config check [FILE]` validates a file; `... docs` prints the reference."""

from __future__ import annotations

import sys
from pathlib import Path

from meerkat.config.docgen import markdown_docs
from meerkat.config.errors import ConfigError
from meerkat.config.load import load_config

USAGE = "usage: python -m meerkat.config check [FILE] | docs"


def main(argv: list[str]) -> int:
    """Exit status: 0 valid (or docs printed), 1 invalid configuration, 2 usage."""
    if argv[:1] == ["docs"] and len(argv) == 1:
        sys.stdout.write(markdown_docs())
        return 0
    if argv[:1] == ["check"] and len(argv) <= 2:
        path = Path(argv[1]) if len(argv) == 2 else None
        try:
            load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("configuration ok (modules not checked: no module registry here)")
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
