"""``python -m gittrigger``: the same as the ``gittrigger`` console script (:func:`gittrigger.cli.main`)."""

import sys

from gittrigger.cli import main

if __name__ == "__main__":
    sys.exit(main())
