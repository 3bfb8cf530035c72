"""Trac as an application of its own (its own worker pool), which the demo's
Django view at /trac/ hands requests to once it has decided who the client
is (demo/trac.py). Trac takes REMOTE_USER, set by wsgate from Django's
answer, as the Trac user: a Django user *is* the Trac user.

Who may administer Trac is Django's business too: the DjangoGroups component
below puts Django's superusers in the Trac group `django_superusers`, which
holds TRAC_ADMIN. Making someone a superuser in Django's admin makes them a
Trac administrator, with nothing to change in Trac. For that one question
this pool reads Django's user table: it configures a minimal Django (the
auth models and the site's database) when it starts.

    [app:trac]
    use = call:demo.tracweb:make_trac_app
    environment = %(var_dir)s/trac
    database = %(var_dir)s/demo.sqlite3
"""

import contextlib
import io
import os

from trac.core import Component, implements
from trac.perm import IPermissionGroupProvider

SUPERUSERS_GROUP = "django_superusers"

# trac.ini values the demo sets on every environment it makes.
TRAC_CONFIG = [
    ("project", "descr", "Trac behind a Django site's login, served by wsgate"),
    # The logo leads back to the Django site.
    ("header_logo", "link", "/"),
    ("header_logo", "src", "common/trac_banner.png"),
    ("header_logo", "alt", "wsgate demo"),
    ("logging", "log_type", "none"),
    ("components", "demo.tracweb.djangogroups", "enabled"),
]


def ensure_environment(path, title):
    """Make the Trac environment with trac-admin's initenv if it is missing,
    and give Django's superusers TRAC_ADMIN. True when it was made."""
    from trac.admin.console import run as trac_admin
    from trac.env import Environment
    from trac.perm import PermissionSystem

    created = False
    if not os.path.isfile(os.path.join(path, "VERSION")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # trac-admin's chatty welcome text
            status = trac_admin([path, "initenv", title, "sqlite:db/trac.db"])
        if status:
            raise RuntimeError(f"trac-admin {path} initenv failed (status {status}):\n{out.getvalue()}")
        created = True
    env = Environment(path)
    try:
        for section, option, value in TRAC_CONFIG:
            env.config.set(section, option, value)
        env.config.save()
        perms = PermissionSystem(env)
        if (SUPERUSERS_GROUP, "TRAC_ADMIN") not in perms.get_all_permissions():
            perms.grant_permission(SUPERUSERS_GROUP, "TRAC_ADMIN")
    finally:
        env.shutdown()
    return created


class DjangoGroups(Component):
    """Trac permission groups from Django: an active Django superuser is in
    `django_superusers`."""

    implements(IPermissionGroupProvider)

    def get_permission_groups(self, username):
        from django.contrib.auth import get_user_model

        User = get_user_model()
        is_superuser = User.objects.filter(
            **{User.USERNAME_FIELD: username, "is_active": True, "is_superuser": True}
        ).exists()
        return [SUPERUSERS_GROUP] if is_superuser else []


def make_trac_app(global_conf, environment, database):
    """paste.app_factory: Trac's WSGI application for the environment, with
    Django's user table (in database) readable by DjangoGroups."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
            USE_TZ=True,
        )
        django.setup()
    from trac.web.main import dispatch_request

    def trac_app(environ, start_response):
        environ["trac.env_path"] = environment
        return dispatch_request(environ, start_response)

    return trac_app
