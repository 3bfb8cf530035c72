"""Trac behind Django's single sign-on, served by Trac in its own pool.

The view at /trac/ hands requests to Trac (demo/tracweb.py) through wsgate's
delegate composite: Trac sees /trac as SCRIPT_NAME (so every link it writes
stays under /trac/) and the Django user of the request as REMOTE_USER, which
Trac's own login module takes as the Trac user. Trac's pages, attachments
and form posts never pass through Django's worker.

Trac's "Login" link (/trac/login) and "Logout" button (a POST to
/trac/logout) are not delegated: the view sends the first to Django's login
page and performs the second as a Django logout, so there is one session, the
Django one.
"""

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt

from demo.gate import not_set_up
from wsgate.django import delegate

MOUNT = "/trac/"
ENVIRONMENT = "trac"  # under DEMO_VAR_DIR


def environment_path():
    return os.path.join(settings.DEMO_VAR_DIR, ENVIRONMENT)


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
    # Any other form post is Trac's: its body is not read here, Trac gets it.
    return delegate("trac", request, path_info)
