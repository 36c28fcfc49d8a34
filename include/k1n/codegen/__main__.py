"""`k1n.codegen ...`: the same command as `k1n codegen ...`."""

import logging
import sys

from k1n.codegen.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    sys.exit(main())
