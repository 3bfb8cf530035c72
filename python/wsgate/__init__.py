"""wsgate's Python runtime: the worker loop, the factory resolver and the
Django helpers. Standard library only; CPython 3.9+.

It ships inside the wsgate binary and is unpacked to a cache directory, so
nothing needs installing on the Python side. ``pip install wsgate`` installs
the same files as this package (beside the binary), so the project's own
interpreter, its tests and its editor can import ``wsgate.django`` too; the
binary then runs its workers on this installed copy when its version is the
binary's (docs/install.md).
"""

try:
    from ._version import __version__
except ImportError:  # built without scripts/version.sh (go install, a bare checkout)
    __version__ = "0.0.0+unknown"
