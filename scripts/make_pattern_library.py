"""Write the demo pattern library as files, e.g. to start a library of your own from it:

    python scripts/make_pattern_library.py --output DIR [--count N]

The workflow does not need this: with no `K1N_PATTERN_LIBRARY` set, each worker generates the
same library into its cache (`k1n.codegen.demo_library`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k1n.codegen.demo_library import DEFAULT_COUNT, write_library


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="patterns in total")
    parser.add_argument("--output", type=Path, required=True, help="library folder")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    written = write_library(args.output, args.count)
    per_kind = ", ".join(f"{kind} {count}" for kind, count in written.items())
    print(f"{args.output}: {args.count} patterns ({per_kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
