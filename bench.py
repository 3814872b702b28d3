#!/usr/bin/env python
"""Grade a model out of 20: ``python bench.py --checkpoint epoch6.pt`` (see ``--help``)."""

import sys

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
