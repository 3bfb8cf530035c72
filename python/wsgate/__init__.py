"""wsgate's Python runtime: the worker loop, the factory resolver and the
Django helpers. Standard library only; CPython 3.9+.

It ships inside the wsgate binary and is unpacked to a cache directory, so
nothing needs installing on the Python side.
"""

__version__ = "0.1.0"
