"""``python -m pyflat.bench``: the same as ``pyflat bench``."""
import sys

from .command import main

sys.exit(main())
