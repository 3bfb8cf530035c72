"""Resolve PasteDeploy factory specs to ``module:qualname`` names.

``wsgate check`` (and the loaders behind ``serve``, ``manage`` and ``test``)
run ``python -m wsgate.resolve`` once, with a JSON request on stdin::

    {"specs": [{"id": 0, "kind": "egg", "dist": "FakeApp", "entry": "main",
                "object_type": "application"},
               {"id": 1, "kind": "call", "spec": "pkg.mod:make_app"},
               {"id": 2, "kind": "object", "spec": "pkg.mod:make_app"},
               {"id": 3, "kind": "require", "dist": "Django"}]}

and answer on stdout with one result per spec::

    {"results": [{"id": 0, "factory": "fakeapp.apps:make_app",
                  "protocol": "paste.app_factory", "error": ""}, ...]}

``egg:`` specs are looked up in the installed distributions' entry points
(``importlib.metadata``), in the groups PasteDeploy uses for the object type;
``call:`` and ``module:object`` specs are imported. A mistake (missing
distribution, entry point, module or attribute, or a module that fails to
import) is a one-line ``error``, never a traceback. Modules are imported,
nothing is called. Standard library only.
"""

import importlib
import json
import re
import sys

try:
    import importlib.metadata as metadata
except ImportError:  # pragma: no cover - CPython < 3.8 is not supported
    metadata = None

# Entry point groups per object type, as PasteDeploy's _ObjectType lists them:
# each inner list is searched in order and stops at the first hit; hits in
# two inner lists are ambiguous.
GROUPS = {
    "application": [["paste.app_factory"], ["paste.composite_factory"], ["paste.composit_factory"]],
    "filter": [["paste.filter_factory", "paste.filter_app_factory"]],
    "server": [["paste.server_factory", "paste.server_runner"]],
}

# Names wsgate serves itself, whether or not a distribution of that name is
# installed (docs/architecture.md, "Built-in factory names"). Keys are
# (normalised distribution name, entry point name).
BUILTINS = {
    ("wsgate", "django"): "wsgate.django.factory:make_wsgi_app",
    ("twod-wsgi", "main"): "wsgate.django.compat:make_twod_app",
    ("django-pastedeploy-settings", "main"): "wsgate.django.compat:make_dpds_app",
}

# importlib.metadata.EntryPoint.pattern: module, optional :attr, optional [extras].
_OBJECT_RE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class ResolveError(Exception):
    """A user's mistake, reported as one line."""


def normalize(name):
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def builtin(dist, entry):
    """The built-in factory for egg:dist#entry, or None."""
    return BUILTINS.get((normalize(dist), entry))


def _exception_line(exc):
    text = str(exc).strip().splitlines()
    return "%s: %s" % (type(exc).__name__, text[0] if text else "")


def is_missing(exc, name):
    """Whether a ModuleNotFoundError raised importing ``name`` says that
    ``name`` itself (or a package above it) does not exist, rather than that
    it exists and failed to import something else."""
    missing = exc.name or ""
    return bool(missing) and (name == missing or name.startswith(missing + "."))


def import_module(name):
    """Import a module; a missing module or a failing import is a ResolveError."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if is_missing(exc, name):
            missing = exc.name
            raise ResolveError(
                "no module named %r (is its package installed in %s, or its directory on PYTHONPATH / --pythonpath?)"
                % (missing, sys.executable)
            ) from None
        raise ResolveError("importing %s failed: %s" % (name, _exception_line(exc))) from None
    except (Exception, SystemExit) as exc:  # the user's module is broken
        raise ResolveError("importing %s failed: %s" % (name, _exception_line(exc))) from None


def lookup(module_name, attrs):
    """Import module_name and follow the attribute names in attrs."""
    obj = import_module(module_name)
    seen = module_name
    for attr in attrs:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ResolveError("%s has no attribute %r" % (seen, attr)) from None
        except (Exception, SystemExit) as exc:
            raise ResolveError("reading %s.%s failed: %s" % (seen, attr, _exception_line(exc))) from None
        seen += "." + attr
    return obj


def resolve_object(spec):
    """``module:attr.attr`` (an entry point value, a paste.*_factory key)."""
    m = _OBJECT_RE.match(spec.strip())
    if m is None:
        raise ResolveError("%r is not module:object (a dotted module path, a colon, a dotted attribute path)" % spec)
    module, attr = m.group("module"), m.group("attr")
    lookup(module, attr.split(".") if attr else [])
    return module + (":" + attr if attr else "")


def resolve_call(spec):
    """``call:module:object`` as PasteDeploy's lookup_object reads it."""
    parts = spec.split(":")
    if len(parts) != 2 or not parts[0]:
        raise ResolveError("call: needs exactly module:object, got %r" % spec)
    module, target = parts
    if "." in target:
        raise ResolveError(
            "PasteDeploy's call: looks up %r as one attribute name; name a module-level object "
            "(or use paste.app_factory = %s:%s, which follows dots)" % (target, module, target)
        )
    lookup(module, [target] if target else [])
    return module + (":" + target if target else "")


def find_distribution(name):
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ResolveError(
            "no installed distribution named %r in %s (install it, put its directory on PYTHONPATH, or fix the name)"
            % (name, sys.executable)
        ) from None


def resolve_egg(dist_name, entry, object_type):
    """``egg:Dist#entry``: (factory, protocol)."""
    groups = GROUPS.get(object_type)
    if groups is None:
        raise ResolveError("unknown object type %r" % object_type)
    found = builtin(dist_name, entry)
    if found is not None:
        if object_type != "application":
            raise ResolveError("wsgate's built-in egg:%s#%s is an application, not a %s" % (dist_name, entry, object_type))
        return found, "paste.app_factory"
    dist = find_distribution(dist_name)
    eps = list(dist.entry_points)
    possible = []
    for options in groups:
        for group in options:
            hit = next((ep for ep in eps if ep.name == entry and ep.group == group), None)
            if hit is not None:
                possible.append((hit, group))
                break
    label = "%s %s" % (dist.metadata["Name"] or dist_name, dist.version)
    if not possible:
        offered = sorted("%s#%s (%s)" % (dist_name, ep.name, ep.group) for ep in eps if ep.group.startswith("paste."))
        want = ", ".join(g for options in groups for g in options)
        raise ResolveError(
            "%s has no entry point %r in %s; it offers %s"
            % (label, entry, want, ", ".join(offered) if offered else "no paste.* entry points")
        )
    if len(possible) > 1:
        raise ResolveError(
            "%s has entry point %r in several groups (%s); PasteDeploy cannot choose"
            % (label, entry, ", ".join(g for _, g in possible))
        )
    ep, group = possible[0]
    try:
        factory = resolve_object(ep.value)
    except ResolveError as exc:
        raise ResolveError("entry point %s = %s of %s: %s" % (entry, ep.value, label, exc)) from None
    return factory, group


def resolve_one(spec):
    kind = spec.get("kind")
    if kind == "egg":
        return resolve_egg(spec["dist"], spec.get("entry", "main"), spec.get("object_type", "application"))
    if kind == "call":
        return resolve_call(spec["spec"]), ""
    if kind == "object":
        return resolve_object(spec["spec"]), ""
    if kind == "require":
        find_distribution(spec["dist"])
        return "", ""
    raise ResolveError("unknown spec kind %r" % kind)


def resolve_all(specs):
    results = []
    for spec in specs:
        result = {"id": spec.get("id"), "factory": "", "protocol": "", "error": ""}
        try:
            result["factory"], result["protocol"] = resolve_one(spec)
        except ResolveError as exc:
            result["error"] = str(exc)
        except Exception as exc:  # e.g. unreadable distribution metadata
            result["error"] = "cannot resolve it: %s" % _exception_line(exc)
        results.append(result)
    return results


def main():
    request = json.load(sys.stdin)
    out = sys.stdout
    # A user's module may print while it is imported: keep stdout for the answer.
    sys.stdout = sys.stderr
    try:
        results = resolve_all(request.get("specs", []))
    finally:
        sys.stdout = out
    json.dump({"results": results}, out)
    out.write("\n")
    out.flush()


if __name__ == "__main__":
    main()
