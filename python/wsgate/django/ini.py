"""Django configured from an INI file by the project's own interpreter.

``wsgate.django.configure("development.ini#main")`` gives a process that
was not started by wsgate — ``python manage.py …``, pytest with
pytest-django, an IDE's test runner — the settings ``wsgate manage
development.ini`` gives: the same INI rules, start-up hooks and errors.

The INI files are read by the wsgate binary, the one place that implements
PasteDeploy's loading: configure() runs ``wsgate worker-tree`` (a hidden
command) for the Django application ``wsgate manage`` would run, resolved by
this interpreter, then builds it here as ``wsgate manage`` does in its child
process. The binary is the one pip installed
beside this interpreter's scripts, else the first ``wsgate`` on PATH, and
must be this package's version (the tree is a contract between the two).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from typing import Any, Dict, Mapping, Optional

from .errors import DjangoConfigError

__all__ = ["configure", "find_wsgate"]

# configure() is once per process, as Django has one settings object.
_configured: Dict[str, Any] = {"request": None}


def find_wsgate() -> Optional[str]:
    """The wsgate binary configure() runs: the one in this interpreter's
    scripts directory (a virtualenv's bin/, where pip installs it), else the
    first on PATH; None when there is none."""
    beside = os.path.join(sysconfig.get_path("scripts"), "wsgate")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    return shutil.which("wsgate")


def configure(config_uri: str, *, overrides: Optional[Mapping[str, str]] = None,
              wsgate: Optional[str] = None) -> None:
    """Configure Django from ``config_uri`` (``file.ini``, ``file.ini#name``,
    ``config:file.ini#name``; relative to the current directory) as ``wsgate
    manage`` does: apply the INI settings, run ``django.setup()`` and the
    start-up hooks. ``overrides`` are ``--set key=value`` pairs; ``wsgate``
    names the binary (default: find_wsgate()).

    Call it before anything reads ``django.conf.settings``: in ``manage.py``
    instead of setting DJANGO_SETTINGS_MODULE, in ``conftest.py``'s
    ``pytest_configure()`` for pytest-django. A second call with the same
    arguments does nothing; with others it raises DjangoConfigError. So do
    configuration mistakes, with wsgate's one-line ``file:line [section]
    option`` message."""
    request = (config_uri, sorted((overrides or {}).items()))
    if _configured["request"] is not None:
        if _configured["request"] == request:
            return
        raise DjangoConfigError("wsgate.django.configure(%r): Django is already configured from %r in this process "
                                "(Django has one settings object per process)" % (config_uri, _configured["request"][0]))
    binary = wsgate or find_wsgate()
    if binary is None:
        raise DjangoConfigError("wsgate.django.configure(%r): no wsgate binary in %s nor on PATH "
                                "(pip install wsgate, see docs/install.md)" % (config_uri, sysconfig.get_path("scripts")))
    argv = [binary, "worker-tree", "--python", sys.executable]
    for key, value in request[1]:
        argv += ["--set", "%s=%s" % (key, value)]
    argv.append(config_uri)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as exc:
        raise DjangoConfigError("wsgate.django.configure(%r): cannot run %s: %s" % (config_uri, binary, exc)) from None
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1:] or ["exit status %d" % proc.returncode]
        raise DjangoConfigError(message[0].replace("wsgate worker-tree: ", "", 1))
    tree = json.loads(proc.stdout)
    from wsgate import __version__

    if tree.get("version") != __version__:
        raise DjangoConfigError(
            "wsgate.django.configure(%r): %s is wsgate %s, but this Python package is %s (%s): install one "
            "release of both (pip install wsgate puts them together, docs/install.md)"
            % (config_uri, binary, tree.get("version"), __version__, os.path.dirname(os.path.dirname(__file__))))
    # Where `wsgate manage` finds the application: the server section's
    # pythonpath and chdir (else the current directory), after this
    # interpreter's own path.
    sys.path.extend(p for p in tree.get("python_path") or [] if p not in sys.path)
    from ._command import load_django

    load_django(tree["node"])
    _configured["request"] = request
