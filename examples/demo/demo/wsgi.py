"""WSGI entry point, as `django-admin startproject` writes it, plus one WSGI
middleware.

Under wsgate the INI file has already configured the settings, so
DJANGO_SETTINGS_MODULE below is only a default for other servers. wsgate
serves the object WSGI_APPLICATION names (this one), so the middleware
wrapped around Django here runs in development and production alike, under
wsgate or any other WSGI server.
"""

import os
import time

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")


class ServerTiming:
    """Adds `Server-Timing: django;dur=MS` (the time until Django started its
    response) to every response, for the browser's developer tools."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()

        def timed_start_response(status, headers, exc_info=None):
            spent = (time.perf_counter() - started) * 1000
            return start_response(status, headers + [("Server-Timing", f"django;dur={spent:.1f}")], exc_info)

        return self.app(environ, timed_start_response)


application = ServerTiming(get_wsgi_application())
