"""``python -m pyflat <command>``: the same as the ``pyflat`` command."""
import sys

from .cli import main

sys.exit(main())
