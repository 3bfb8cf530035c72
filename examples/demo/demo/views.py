"""The demo's own pages: the home page shows where its settings came from."""

import importlib

import django

from django.conf import global_settings, settings
from django.shortcuts import render

# Values the home page must not print.
SECRET_WORDS = ("SECRET", "PASSWORD", "KEY")


def site_context(request):
    """Template context processor: the site title the INI file gives."""
    return {"site_title": settings.DEMO_SITE_TITLE, "django_version": django.get_version()}


def home(request):
    return render(request, "demo/home.html", {"ini_settings": ini_settings(), "module": settings.SETTINGS_MODULE})


def ini_settings():
    """[(name, printable value, origin)] for every setting the INI files gave.

    wsgate records where each setting came from; when it cannot tell us, a
    setting counts as the INI's when its value is neither the settings
    module's nor Django's default.
    """
    origins = wsgate_origins()
    if origins is None:
        module = importlib.import_module(settings.SETTINGS_MODULE)
        origins = {}
        for name in dir(settings):
            if not name.isupper():
                continue
            value = getattr(settings, name)
            baseline = getattr(module, name, getattr(global_settings, name, _MISSING))
            if value != baseline:
                origins[name] = "INI file"
    return [(name, printable(name, getattr(settings, name, None)), origin) for name, origin in sorted(origins.items())]


def wsgate_origins():
    """{setting: "file:line"} from wsgate for the settings an INI file gave,
    or None when this wsgate does not say."""
    try:
        from wsgate.django import setting_origins
    except ImportError:
        return None
    found = {}
    for name, origin in setting_origins().items():
        if "module" not in str(origin):
            found[name] = str(origin)
    return found


def printable(name, value):
    if any(word in name for word in SECRET_WORDS):
        return "(hidden)"
    if isinstance(value, dict):
        return {k: ("(hidden)" if "password" in str(k).lower() else printable(name, v)) for k, v in value.items()}
    return value


_MISSING = object()
