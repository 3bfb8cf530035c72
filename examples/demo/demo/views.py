"""The demo's own pages: the home page shows where its settings came from."""

import os

import django

from django.conf import settings
from django.shortcuts import render

from wsgate.django import setting_origins

# Values the home page must not print.
SECRET_WORDS = ("SECRET", "PASSWORD", "KEY")


def site_context(request):
    """Template context processor: the site title the INI file gives."""
    return {"site_title": settings.DEMO_SITE_TITLE, "django_version": django.get_version()}


def home(request):
    return render(request, "demo/home.html", {"ini_settings": ini_settings(), "module": settings.SETTINGS_MODULE})


def ini_settings():
    """[(name, printable value, origin)] for every setting the INI files gave,
    as wsgate recorded them while applying the INI file."""
    return [(name, printable(name, getattr(settings, name, None)), origin)
            for name, origin in sorted(ini_origins().items())]


def ini_origins():
    """{setting: "file:line [section] NAME"} for the settings an INI file gave
    (not the settings module, not Django's defaults)."""
    found = {}
    for name, origin in setting_origins().items():  # wsgate's record, as `wsgate check` shows it
        origin = str(origin)
        if origin.startswith("module ") or origin == "django default":
            continue
        found[name] = short_path(origin)
    return found


def short_path(origin):
    """An origin with the INI file's path made relative to the project."""
    path, sep, rest = origin.partition(":")
    if sep and os.path.isabs(path):
        path = os.path.relpath(path, settings.BASE_DIR)
    return path + sep + rest


def printable(name, value):
    if any(word in name for word in SECRET_WORDS):
        return "(hidden)"
    if isinstance(value, dict):
        return {k: ("(hidden)" if "password" in str(k).lower() else printable(name, v)) for k, v in value.items()}
    return value

