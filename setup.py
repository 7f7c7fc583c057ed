"""Build the cffi extension; metadata lives in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["pyflat/_build.py:ffibuilder"])
