"""WSGI entry point, as `django-admin startproject` writes it.

Under wsgate the INI file has already configured the settings, so
DJANGO_SETTINGS_MODULE below is only a default for other servers. wsgate
serves the object WSGI_APPLICATION names (this one), so WSGI middleware
wrapped around it here would run in development and production alike.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

application = get_wsgi_application()
