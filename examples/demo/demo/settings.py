"""Django settings of the wsgate demo, as `django-admin startproject` would
write them, minus everything the INI files give.

Nothing site-specific lives here: the database, the secret key, the debug
flag, the allowed hosts, the admin account and where the demo keeps its state
come from base.ini and development.ini (or production.ini). The home page
lists them with the file and line each one came from.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A placeholder: base.ini or development.ini always sets the real one, and
# production.ini refuses to start without one given on the command line.
SECRET_KEY = "not-a-secret: set SECRET_KEY in the INI file"

ALLOWED_HOSTS = []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.views.site_context",
            ],
        },
    },
]

WSGI_APPLICATION = "demo.wsgi.application"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# The demo's own settings; the INI files fill them in.
DEMO_SITE_TITLE = "wsgate demo"
# Where the demo keeps its state: SQLite database, Mercurial repositories, Trac.
DEMO_VAR_DIR = str(BASE_DIR / "var")
# The superuser `wsgate manage … demo_setup` creates (and keeps in step with
# the INI file): {"username": …, "password": …, "email": …}.
DEMO_ADMIN = {}
