# The project's wsgi.py: WSGI middleware applied here must run under wsgate.
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "startproject_settings")


def _mark(app):
    def middleware(environ, start_response):
        def marked(status, headers, exc_info=None):
            return start_response(status, headers + [("X-Project-Wsgi", "applied")], exc_info)

        return app(environ, marked)

    return middleware


application = _mark(get_wsgi_application())
