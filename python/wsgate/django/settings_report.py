"""``python -m wsgate.django.settings_report``: every Django setting of a
configuration and where it came from, for ``wsgate check``.

Reads a worker-form node tree (JSON) on stdin, finds the Django application
in it (``egg:wsgate#django``, ``egg:twod.wsgi`` or
``egg:django-pastedeploy-settings``), applies the configuration to the
settings module and loads Django as a worker would (start-up hooks are not
run), then prints one JSON object on stdout:

    {"mode": "native", "use": "egg:wsgate#django", "source": "dev.ini:5 [app:main]",
     "settings_module": "mysite.settings",
     "settings": [{"name": "DEBUG", "value": "True", "origin": "dev.ini:2 [DEFAULT] debug"}, ...],
     "warnings": ["..."]}

and exits 0; or prints ``{"error": "one line naming file:line [section] option"}``
and exits 1. A tree without a Django application gives ``{"settings": []}``.
Values are shown as Python literals, with secrets (keys, passwords, tokens)
masked as Django's error pages mask them. ``serving`` is what the Go side
needs to serve the static and media files (django_full), as plain values:

    "serving": {"debug": false, "staticfiles": true,
                "finder_dirs": ["/srv/site/assets", ".../django/contrib/admin/static"],
                "other_finders": [], "static_url": "/static/",
                "static_root": "/srv/site/var/static", "media_url": "/media/",
                "media_root": "/srv/site/var/media"}

(a root is "" when the setting is empty; a relative one is made absolute from
the working directory).
"""

import json
import logging
import os
import sys

FACTORIES = {
    "wsgate.django.factory:make_wsgi_app": "native",
    "wsgate.django.factory:get_configured_django_wsgi_app": "native",
    "wsgate.django.compat:make_twod_app": "twod",
    "wsgate.django.compat:wsgify_django": "twod",
    "wsgate.django.compat:make_dpds_app": "dpds",
    "wsgate.django.compat:get_configured_django_wsgi_app": "dpds",
}


def find_django_node(node):
    """The first node of the tree served by one of wsgate's Django factories."""
    if not isinstance(node, dict):
        return None
    if node.get("object_type") == "application" and node.get("factory") in FACTORIES:
        return node
    children = [node.get("app"), node.get("next"), node.get("filter")]
    children += list(node.get("filters") or [])
    children += list((node.get("loadable") or {}).values())
    for child in children:
        found = find_django_node(child)
        if found is not None:
            return found
    return None


def _cleanse(name, value):
    try:
        from django.views.debug import SafeExceptionReporterFilter

        return SafeExceptionReporterFilter().cleanse_setting(name, value)
    except Exception:
        return value


def _root(value):
    # A relative root means what it means in a worker: from the working
    # directory, which the caller gives this process too.
    return os.path.abspath(os.fspath(value)) if value else ""


def _finder_dirs():
    """The directories Django's static-file finders search, in their order
    (what runserver serves from while DEBUG is on), and the finders that are
    not a directory list (left to Django). A STATICFILES_DIRS entry with a
    prefix is left to Django too."""
    from django.contrib.staticfiles import finders

    dirs, others = [], []
    for finder in finders.get_finders():
        if isinstance(finder, finders.FileSystemFinder):
            for prefix, root in finder.locations:
                if prefix:
                    others.append("STATICFILES_DIRS entry with prefix %r" % prefix)
                else:
                    dirs.append(_root(root))
        elif isinstance(finder, finders.AppDirectoriesFinder):
            dirs.extend(_root(finder.storages[app].location) for app in finder.apps)
        else:
            others.append("%s.%s" % (type(finder).__module__, type(finder).__qualname__))
    return dirs, others


def serving():
    """What the Go side serves for this Django (django_full): the URLs and
    directories of the static and media files, as plain strings."""
    from django.conf import settings

    apps = list(getattr(settings, "INSTALLED_APPS", []) or [])
    staticfiles = any(a == "django.contrib.staticfiles" or a.startswith("django.contrib.staticfiles.") for a in apps)
    dirs, others = _finder_dirs() if staticfiles else ([], [])
    return {
        "debug": bool(settings.DEBUG),
        "staticfiles": staticfiles,
        "finder_dirs": dirs,
        "other_finders": others,
        "static_url": str(settings.STATIC_URL or ""),
        "static_root": _root(getattr(settings, "STATIC_ROOT", None)),
        "media_url": str(settings.MEDIA_URL or ""),
        "media_root": _root(getattr(settings, "MEDIA_ROOT", None)),
    }


def report(tree):
    """The report for a worker-form tree, as a dict."""
    node = find_django_node(tree)
    if node is None:
        return {"settings": []}
    from . import conf, factory

    mode = FACTORIES[node["factory"]]
    logging.getLogger("wsgate.django").propagate = False
    logging.getLogger("wsgate.django").addHandler(logging.NullHandler())
    outcome = factory.configure_django(mode, dict(node.get("global_conf") or {}),
                                       dict(node.get("local_conf") or {}), node)
    factory.wsgi_application(outcome)
    module = outcome.module
    settings = []
    for name in sorted(n for n in dir(module) if n.isupper()):
        settings.append({
            "name": name,
            "value": repr(_cleanse(name, getattr(module, name))),
            "origin": outcome.origins.get(name, "module %s" % outcome.module_name),
        })
    return {
        "serving": serving(),
        "mode": mode,
        "use": conf.MODE_NAMES[mode],
        "source": node.get("source"),
        "settings_module": outcome.module_name,
        "settings": settings,
        "warnings": outcome.warnings,
    }


def main():
    try:
        tree = json.load(sys.stdin)
    except ValueError as exc:
        print(json.dumps({"error": "settings_report: stdin is not a JSON node tree: %s" % exc}))
        return 1
    try:
        result = report(tree)
    except Exception as exc:
        if getattr(exc, "wsgate_config_error", False):
            message = str(exc)
        else:
            from .conf import describe_exception

            message = "%s: %s" % ((find_django_node(tree) or {}).get("source") or "?", describe_exception(exc))
        print(json.dumps({"error": message}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
