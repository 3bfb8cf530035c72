"""Build a WSGI application from a node tree in its worker form.

The Go side (``internal/config``) reads the INI files and resolves every
factory; it hands workers the tree as JSON (docs/architecture.md, "worker
form"). ``load(node)`` calls the factories with PasteDeploy's signatures:

* ``paste.app_factory``: ``factory(global_conf, **local_conf)`` is the app;
* ``paste.composite_factory`` / ``paste.composit_factory``:
  ``factory(loader, global_conf, **local_conf)``, where ``loader.get_app(name)``
  returns the applications the Go side loaded in advance (``"loadable"``);
* ``paste.filter_factory``: ``factory(global_conf, **local_conf)(app)``;
* ``paste.filter_app_factory``: ``factory(app, global_conf, **local_conf)``;
* ``paste.server_factory`` / ``paste.server_runner`` likewise for servers;
* ``wsgate.callable``: the object itself is the application.

Pipelines apply their filters right to left around the application (the
first filter listed is outermost); ``filter_app`` and ``filtered_with`` nodes
apply their filter to ``next``. Standard library only.
"""

import importlib
import os
import threading

__all__ = ["setup_logging", "load", "load_filter", "load_server", "lookup", "current_node", "LoadError", "CompositeLoader"]

APP_PROTOCOLS = ("paste.app_factory", "paste.composite_factory", "paste.composit_factory", "wsgate.callable")


def setup_logging():
    """Configure logging as pserve does, before the application loads: the
    master names the INI file whose [loggers], [handlers] and [formatters]
    apply (its CONFIG_URI's file, or --log-config) in WSGATE_LOG_CONFIG;
    ``here`` and ``__file__`` are that file's directory and path, and the
    loggers that exist already stay enabled. Nothing when none is named."""
    path = os.environ.pop("WSGATE_LOG_CONFIG", "")  # not inherited by the app's own subprocesses
    if not path:
        return
    import logging.config

    logging.config.fileConfig(path, {"__file__": path, "here": os.path.dirname(path)},
                              disable_existing_loggers=False)


class LoadError(Exception):
    """A node could not be turned into an application (names its source).

    Exceptions whose class has ``wsgate_config_error = True`` (a factory's
    own one-line configuration message) pass through unwrapped."""


def lookup(factory):
    """Import ``module:qual.name`` (or a bare ``module``) and return the object."""
    module_name, _, qualname = factory.partition(":")
    obj = importlib.import_module(module_name)
    for attr in qualname.split(".") if qualname else []:
        obj = getattr(obj, attr)
    return obj


def _where(node):
    return node.get("source") or node.get("use") or node.get("factory") or "?"


_building = threading.local()


def current_node():
    """The worker-form node whose factory is being called right now (in this
    thread), or None: lets a factory with PasteDeploy's signature read the
    node's sources."""
    stack = getattr(_building, "stack", None)
    return stack[-1] if stack else None


def _call(node, what, fn, *args, **kwargs):
    stack = _building.__dict__.setdefault("stack", [])
    stack.append(node)
    try:
        return fn(*args, **kwargs)
    except LoadError:
        raise
    except Exception as exc:
        if getattr(exc, "wsgate_config_error", False):
            # Already a complete one-line message about the configuration.
            raise
        raise LoadError(
            "%s: %s %s raised %s: %s" % (_where(node), what, node.get("factory"), type(exc).__name__, exc)
        ) from exc
    finally:
        stack.pop()


def _factory(node):
    factory = node.get("factory")
    if not factory:
        raise LoadError("%s: no factory (was the configuration resolved?)" % _where(node))
    if factory.startswith("go:"):
        raise LoadError("%s: %s is served by wsgate's Go side, not by a Python worker" % (_where(node), factory))
    try:
        return lookup(factory)
    except Exception as exc:
        raise LoadError("%s: importing %s failed: %s: %s" % (_where(node), factory, type(exc).__name__, exc)) from exc


def _confs(node):
    return dict(node.get("global_conf") or {}), dict(node.get("local_conf") or {})


def is_filter(node):
    """Whether the node builds a filter (a callable taking an app) rather than an app."""
    kind = node.get("object_type")
    if kind == "filter":
        return True
    if kind == "filtered_with":
        return is_filter(node["next"])
    return False


class CompositeLoader:
    """What a composite factory receives as ``loader`` (PasteDeploy's loader
    interface): the applications its section names, loaded in advance."""

    def __init__(self, node):
        self._node = node
        self._loadable = node.get("loadable") or {}

    def _get(self, name):
        if name is None:
            name = "main"
        node = self._loadable.get(name)
        if node is None:
            known = ", ".join(sorted(self._loadable)) or "none"
            raise LookupError(
                "%s: the composite asked for %r, which none of its settings names (loadable: %s)"
                % (_where(self._node), name, known)
            )
        return node

    def get_app(self, name=None, global_conf=None):
        return load(self._get(name))

    def get_filter(self, name=None, global_conf=None):
        return load_filter(self._get(name))

    def get_server(self, name=None, global_conf=None):
        return load_server(self._get(name))


def load(node):
    """The WSGI application a worker-form node describes."""
    kind = node.get("object_type")
    if kind == "pipeline":
        app = load(node["app"])
        filters = [load_filter(f) for f in node.get("filters") or []]
        for f in reversed(filters):
            app = _call(node, "applying filter", f, app)
        return app
    if kind == "filter_app":
        next_app = load(node["next"])
        return _call(node, "applying filter", load_filter(node["filter"]), next_app)
    if kind == "filtered_with":
        if is_filter(node["next"]):
            raise LoadError("%s: filters a filter; an application is needed here" % _where(node))
        next_app = load(node["next"])
        return _call(node, "applying filter-with", load_filter(node["filter"]), next_app)
    if kind != "application":
        raise LoadError("%s: a %s is not an application" % (_where(node), kind))
    protocol = node.get("protocol")
    obj = _factory(node)
    if protocol == "wsgate.callable":
        return obj
    global_conf, local_conf = _confs(node)
    if protocol == "paste.app_factory":
        return _call(node, "app factory", obj, global_conf, **local_conf)
    if protocol in ("paste.composite_factory", "paste.composit_factory"):
        return _call(node, "composite factory", obj, CompositeLoader(node), global_conf, **local_conf)
    raise LoadError("%s: protocol %r cannot make an application" % (_where(node), protocol))


def load_filter(node):
    """A filter: a callable taking a WSGI app and returning one."""
    kind = node.get("object_type")
    if kind == "filtered_with":
        outer = load_filter(node["filter"])
        inner = load_filter(node["next"])

        def composed(app):
            return outer(inner(app))

        return composed
    if kind != "filter":
        raise LoadError("%s: a %s is not a filter" % (_where(node), kind))
    protocol = node.get("protocol")
    obj = _factory(node)
    global_conf, local_conf = _confs(node)
    if protocol == "paste.filter_factory":
        return _call(node, "filter factory", obj, global_conf, **local_conf)
    if protocol == "paste.filter_app_factory":

        def filter_app(app):
            return _call(node, "filter-app factory", obj, app, global_conf, **local_conf)

        return filter_app
    raise LoadError("%s: protocol %r cannot make a filter" % (_where(node), protocol))


def load_server(node):
    """A server: a callable taking the WSGI app to serve."""
    if node.get("object_type") != "server":
        raise LoadError("%s: a %s is not a server" % (_where(node), node.get("object_type")))
    protocol = node.get("protocol")
    obj = _factory(node)
    global_conf, local_conf = _confs(node)
    if protocol == "paste.server_factory":
        return _call(node, "server factory", obj, global_conf, **local_conf)
    if protocol == "paste.server_runner":

        def runner(app):
            return _call(node, "server runner", obj, app, global_conf, **local_conf)

        return runner
    raise LoadError("%s: protocol %r cannot make a server" % (_where(node), protocol))
