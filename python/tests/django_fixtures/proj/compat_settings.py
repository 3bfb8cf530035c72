# A settings module for the compatibility modes: no DEBUG (they refuse it),
# tuples that twod.wsgi extends, a list that django-pastedeploy-settings
# extends, scalars both keep.
SECRET_KEY = "module-secret"
INSTALLED_APPS = (
    "django.contrib.contenttypes",
    "django.contrib.auth",
)
ALLOWED_HOSTS = ["localhost"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "site_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TIME_ZONE = "UTC"
USE_TZ = True
EMAIL_PORT = 25
ADMINS = (("Module Admin", "module@example.com"),)
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MY_TUPLE = ("from-module",)
