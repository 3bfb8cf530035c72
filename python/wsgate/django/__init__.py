"""wsgate's Django integration.

Factories (named by ``use =`` in INI files, see docs/django.md):
``wsgate.django.factory:make_wsgi_app`` (``egg:wsgate#django``),
``wsgate.django.compat:make_twod_app`` (``egg:twod.wsgi``),
``wsgate.django.compat:make_dpds_app`` (``egg:django-pastedeploy-settings``).

Helpers, importable from here: ``call_wsgi_app``, ``make_wsgi_view``, ``delegate``,
``RoutingArgsMiddleware``, ``DjangoApplication``, ``WSGIRequest``,
``get_configured_django_wsgi_app``, ``setting_origins``, and ``configure``
(Django's settings from an INI file in a process wsgate did not start:
manage.py, pytest). They are imported on first use, so importing this
package does not import Django.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see of the lazy attributes below
    from .embedded import call_wsgi_app, make_wsgi_view
    from .errors import ApplicationCallError, DjangoConfigError
    from .factory import get_configured_django_wsgi_app, make_wsgi_app, setting_origins
    from .handler import DjangoApplication, WSGIRequest
    from .ini import configure
    from .middleware import RoutingArgsMiddleware

_EXPORTS = {
    "call_wsgi_app": "embedded",
    "make_wsgi_view": "embedded",
    "delegate": "embedded",
    "RoutingArgsMiddleware": "middleware",
    "DjangoApplication": "handler",
    "WSGIRequest": "handler",
    "get_configured_django_wsgi_app": "factory",
    "make_wsgi_app": "factory",
    "setting_origins": "factory",
    "DjangoConfigError": "errors",
    "ApplicationCallError": "errors",
    "configure": "ini",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import importlib

    value = getattr(importlib.import_module("%s.%s" % (__name__, module)), name)
    globals()[name] = value
    return value
