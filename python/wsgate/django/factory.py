"""wsgate's Django application factory: ``use = egg:wsgate#django``.

``make_wsgi_app(global_conf, **local_conf)`` is a PasteDeploy app factory:
it applies the application section to the Django settings module (see
wsgate.django.conf for the rules), loads Django, runs the ``startup =
module:function`` hooks once, and returns the WSGI application Django's
WSGI_APPLICATION setting names (wsgate's own, whose requests carry
``request.webob``, when the setting is unset).

A project that needs its own start-up code writes a factory of its own and
calls ``get_configured_django_wsgi_app(global_conf, **local_conf)`` from it.
"""

import json

from . import conf
from .conf import DPDS, NATIVE, describe_exception
from .errors import DjangoConfigError

# One Django configuration per process: Django has one settings object.
_state = {"key": None, "outcome": None, "hooks_ran": False}


def setting_origins():
    """Where each setting of the configured project came from:
    ``{"SECRET_KEY": "development.ini:12 [app:main] SECRET_KEY", "DEBUG":
    "module mysite.settings", …}`` (``{}`` before Django is configured).
    The same data ``wsgate check`` shows."""
    outcome = _state["outcome"]
    return dict(outcome.origins) if outcome is not None else {}


def current_node():
    """The worker-form node wsgate's loader is instantiating, if any."""
    try:
        from wsgate import loader
    except ImportError:
        return None
    getter = getattr(loader, "current_node", None)
    return getter() if getter else None


def _key(mode, global_conf, local_conf):
    return json.dumps([mode, global_conf, local_conf], sort_keys=True, default=str)


def configure_django(mode, global_conf, local_conf, node=None):
    """Apply the configuration and load Django's settings and applications;
    return the conf.Outcome. Calling it again with the same configuration
    returns the first outcome; a different one is an error."""
    key = _key(mode, global_conf, local_conf)
    if _state["outcome"] is not None:
        if _state["key"] == key:
            return _state["outcome"]
        sources = conf.Sources(global_conf, node)
        raise DjangoConfigError(
            "%s: a second Django configuration in one process: Django has one settings object per "
            "process (the first was %s); mount the two with egg:wsgate#urlmap (or egg:Paste#urlmap), "
            "which gives each its own worker pool, not with a Python composite"
            % (sources.section or "[app]", _state["outcome"].sources.section or _state["outcome"].module_name))
    from django.conf import settings

    if settings.configured:
        raise DjangoConfigError(
            "%s: Django's settings were loaded before wsgate applied the INI file (something read "
            "django.conf.settings before the factory ran)" % (conf.Sources(global_conf, node).section or "[app]"))
    outcome = conf.configure(mode, global_conf, local_conf, node)
    _load_django(outcome)
    _state.update(key=key, outcome=outcome)
    return outcome


def _load_django(outcome):
    import django
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # builds the Settings object: Django validates here
        django.setup(set_prefix=False)
    except DjangoConfigError:
        raise
    except Exception as exc:
        raise DjangoConfigError(
            "%s: Django rejects the settings: %s" % (conf.blame(outcome, exc), describe_exception(exc))
        ) from None


def resolve_hook(spec, location):
    """The callable a ``module:function`` start-up spec names."""
    import importlib

    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise DjangoConfigError("%s: start-up hook %r must be written module:function" % (location, spec))
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        raise DjangoConfigError(
            "%s: cannot import start-up hook %s: %s" % (location, spec, describe_exception(exc))) from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DjangoConfigError(
                "%s: start-up hook %s: module %s has no %s" % (location, spec, module_name, qualname)) from None
    if not callable(obj):
        raise DjangoConfigError("%s: start-up hook %s is not callable" % (location, spec))
    return obj


def run_startup(outcome):
    """Run the ``startup`` hooks once per process, after Django is loaded."""
    if _state["hooks_ran"]:
        return
    _state["hooks_ran"] = True
    for spec, location in outcome.startup:
        hook = resolve_hook(spec, location)
        try:
            hook()
        except Exception as exc:
            raise DjangoConfigError(
                "%s: start-up hook %s failed: %s" % (location, spec, describe_exception(exc))) from None


def wsgi_application(outcome):
    """The object Django's WSGI_APPLICATION names, else the mode's default."""
    from django.conf import settings

    name = getattr(settings, "WSGI_APPLICATION", None)
    if name:
        from django.utils.module_loading import import_string

        try:
            return import_string(name)
        except Exception as exc:
            where = outcome.locations.get("WSGI_APPLICATION") or getattr(outcome.module, "__file__", outcome.module_name)
            raise DjangoConfigError(
                "%s: WSGI_APPLICATION %r cannot be loaded: %s" % (where, name, describe_exception(exc))) from None
    if outcome.mode == DPDS:
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    from .handler import DjangoApplication

    return DjangoApplication()


def with_static_files(app, outcome):
    """In development, static files as ``runserver`` serves them: with DEBUG
    on and django.contrib.staticfiles installed, Django's StaticFilesHandler
    answers STATIC_URL from the finders (each app's static/ folder,
    STATICFILES_DIRS) and passes every other request to the app.
    ``serve_static = false`` turns it off (runserver's --nostatic)."""
    from django.conf import settings

    if not (outcome.serve_static and settings.DEBUG and "django.contrib.staticfiles" in settings.INSTALLED_APPS):
        return app
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.exceptions import ImproperlyConfigured

    try:
        return StaticFilesHandler(app)
    except ImproperlyConfigured as exc:
        where = outcome.locations.get("STATIC_URL") or conf.module_line(outcome.module, "STATIC_URL")
        raise DjangoConfigError(
            "%s: serving static files in development (DEBUG on, django.contrib.staticfiles installed): %s "
            "Set STATIC_URL, or serve_static = false" % (where, exc)) from None


def build(mode, global_conf, local_conf):
    """Configure Django in ``mode``, run the start-up hooks, return the app
    (native mode: serving static files in development, with_static_files)."""
    outcome = configure_django(mode, global_conf, local_conf, current_node())
    run_startup(outcome)
    app = wsgi_application(outcome)
    return with_static_files(app, outcome) if mode == NATIVE else app


def get_configured_django_wsgi_app(global_conf, **local_conf):
    """The native factory's work, for custom factories: configure Django from
    this section (JSON values, INI wins, ``extend NAME``, ``debug``), load
    it, run the start-up hooks, and return its WSGI application."""
    return build(NATIVE, global_conf, local_conf)


def make_wsgi_app(global_conf, **local_conf):
    """PasteDeploy app factory for ``use = egg:wsgate#django``."""
    return build(NATIVE, global_conf, local_conf)
