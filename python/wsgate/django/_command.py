"""What ``python -m wsgate.django.manage`` and ``.test`` share: build the
application a worker-form node describes (which configures Django and runs
the start-up hooks, exactly as a serve worker does), then hand over to
Django's command-line machinery."""

import json
import os
import sys


def _served_by_go(node):
    """Whether any node of this tree is a Go component (factory ``go:…``)."""
    if not isinstance(node, dict):
        return False
    if str(node.get("factory") or "").startswith("go:"):
        return True
    children = [node.get("app"), node.get("next"), node.get("filter")] + list(node.get("filters") or [])
    children += list((node.get("loadable") or {}).values())
    return any(_served_by_go(c) for c in children)


def load_python_parts(loader, node):
    """Build the Python applications of the tree: all of it when it is all
    Python, else the Python applications Go components wrap or route to
    (Go nodes wrap Python nodes, never the reverse)."""
    if not _served_by_go(node):
        loader.load(node)
        return
    for child in [node.get("app"), node.get("next")] + list((node.get("loadable") or {}).values()):
        if isinstance(child, dict):
            load_python_parts(loader, child)


def load_django(node):
    """Build the tree's Python applications, which configures Django and runs
    the start-up hooks; DjangoConfigError when the tree has no Django project.
    (wsgate manage and test, and wsgate.django.configure().)"""
    from wsgate import loader

    from .errors import DjangoConfigError

    load_python_parts(loader, node)
    try:
        from django.conf import settings
    except ImportError:
        raise DjangoConfigError("Django is not installed in %s" % sys.executable) from None
    if not settings.configured:
        raise DjangoConfigError(
            "%s: this application configures no Django project (no egg:wsgate#django, egg:twod.wsgi "
            "or egg:django-pastedeploy-settings application in it)" % (node.get("source") or "?"))


def fail(prog, message):
    sys.stderr.write("%s: %s\n" % (prog, message))
    return 1


def run(prog, node_file, django_argv, shown_as=None):
    """Load the node in ``node_file``, then run Django's ManagementUtility
    with ``django_argv`` (its help calls the program ``shown_as``); return
    the exit status."""
    try:
        with open(node_file, encoding="utf-8") as f:
            node = json.load(f)
    except (OSError, ValueError) as exc:
        return fail(prog, "cannot read the configuration node %s: %s" % (node_file, exc))
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    from wsgate import loader

    try:
        loader.setup_logging()
        load_django(node)
    except Exception as exc:
        if getattr(exc, "wsgate_config_error", False) or isinstance(exc, loader.LoadError):
            return fail(prog, str(exc))
        raise
    from django.core.management import ManagementUtility

    utility = ManagementUtility([prog] + list(django_argv))
    utility.prog_name = shown_as or prog
    try:
        utility.execute()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write("%s\n" % code)
        return 1
    return 0


def main(default_prog, prefix):
    args = sys.argv[1:]
    if not args:
        return fail(default_prog, "usage: python -m %s NODE_JSON_FILE [ARGS…] (wsgate runs this for you)"
                    % default_prog)
    return run(default_prog, args[0], prefix + args[1:], os.environ.get("WSGATE_PROG"))
