"""``python -m worldgen.demo [options]``: the same as ``worldgen demo [options]``."""
import sys

from worldgen.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
