"""Trac embedded in Django, with Django's single sign-on.

The view at /trac/ hands requests to Trac with wsgate.django's call_wsgi_app:
Trac sees /trac as SCRIPT_NAME (so every link it writes stays under /trac/)
and the Django user of the request as REMOTE_USER, which Trac's own login
module takes as the Trac user: a Django user *is* the Trac user.

Trac's "Login" link (/trac/login) and "Logout" button (a POST to
/trac/logout) never reach Trac: the view sends the first to Django's login
page and performs the second as a Django logout, so there is one session, the
Django one.

Who may administer Trac is Django's business too: the DjangoGroups component
below puts Django's superusers in the Trac group `django_superusers`, which
holds TRAC_ADMIN. Making someone a superuser in Django's admin makes them a
Trac administrator, with nothing to change in Trac.
"""

import contextlib
import io
import os
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt

from trac.core import Component, implements
from trac.perm import IPermissionGroupProvider

from demo.hg import not_set_up
from wsgate.django import call_wsgi_app

MOUNT = "/trac/"
ENVIRONMENT = "trac"  # under DEMO_VAR_DIR
SUPERUSERS_GROUP = "django_superusers"

# trac.ini values the demo sets on every environment it makes.
TRAC_CONFIG = [
    ("project", "descr", "Trac embedded in a Django site served by wsgate"),
    # The logo leads back to the Django site.
    ("header_logo", "link", "/"),
    ("header_logo", "src", "common/trac_banner.png"),
    ("header_logo", "alt", "wsgate demo"),
    ("logging", "log_type", "none"),
    ("components", "demo.trac.djangogroups", "enabled"),
]


def environment_path():
    return os.path.join(settings.DEMO_VAR_DIR, ENVIRONMENT)


def ensure_environment(path):
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
            status = trac_admin([path, "initenv", settings.DEMO_SITE_TITLE, "sqlite:db/trac.db"])
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


def trac_app(environ, start_response):
    """Trac's WSGI application, pointed at the demo's environment."""
    from trac.web.main import dispatch_request

    environ["trac.env_path"] = environment_path()
    return dispatch_request(environ, start_response)


def back_to_trac(request):
    """The Trac page the user came from (Trac's Login link is on every page),
    else Trac's start page."""
    referer = urlsplit(request.META.get("HTTP_REFERER", ""))
    same_site = url_has_allowed_host_and_scheme(
        request.META.get("HTTP_REFERER", ""), allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if same_site and referer.path.startswith(MOUNT) and not referer.path.rstrip("/").endswith(("/login", "/logout")):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return MOUNT


@csrf_exempt  # Trac's forms carry Trac's own token (__FORM_TOKEN), checked by Trac
def trac_view(request, path_info):
    action = path_info.strip("/")
    if action == "login":
        back = back_to_trac(request)
        if request.user.is_authenticated:
            return HttpResponseRedirect(back)
        return redirect_to_login(back)
    if action == "logout":
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # Trac's logout button posts Trac's form token; check it as Trac
        # would, so that another site cannot log our users out.
        token = request.COOKIES.get("trac_form_token")
        if token and constant_time_compare(request.POST.get("__FORM_TOKEN", ""), token):
            logout(request)
        return HttpResponseRedirect(MOUNT)
    if not os.path.isfile(os.path.join(environment_path(), "VERSION")):
        return not_set_up(f"Trac environment {environment_path()}")
    return call_wsgi_app(trac_app, request, path_info)
