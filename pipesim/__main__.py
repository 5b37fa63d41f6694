"""``python -m pipesim``: the command line (importing this module runs nothing)."""

import sys

from pipesim.cli import main

if __name__ == "__main__":
    sys.exit(main())
