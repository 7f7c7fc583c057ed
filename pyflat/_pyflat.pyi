# The cffi extension built from csrc/pyflat.h (see _build.py).  cffi gives its
# objects no static types: what crosses this boundary is checked where it is
# used (threads.py, _kernel.py).
from typing import Any

ffi: Any
lib: Any
