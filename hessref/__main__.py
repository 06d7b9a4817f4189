"""``python -m hessref``: the same command line as the ``hessref`` entry point."""

import sys

from hessref.cli import main

# Guarded so that importing this module (e.g. pytest's doctest collection) runs nothing.
if __name__ == "__main__":
    sys.exit(main())
