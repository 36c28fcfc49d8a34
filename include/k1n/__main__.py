"""`k1n` is the `k1n` command."""

import sys

from k1n.cli import main

sys.exit(main())
