"""Mercurial behind Django's users, served by hgweb in its own pool.

The view at /hg/ decides who the client is and hands the request to hgweb
(demo/hgweb.py) through wsgate's delegate composite: hgweb sees /hg as
SCRIPT_NAME, the rest as PATH_INFO, and the Django user as REMOTE_USER. No
byte of a clone or a push passes through Django's worker:

* in a browser, the user is the one of the Django session;
* the `hg` client speaks HTTP basic authentication: the view checks the
  name and password against Django's users and refuses wrong ones with 401.

Anyone may browse and clone. A push (hg's `unbundle` and `pushkey` commands)
needs a Django user: without one the view answers 401 with a challenge, which
the `hg` client answers with the credentials of its URL
(http://user:password@host/hg/demo).
"""

import os

from django.conf import settings
from django.views.decorators.csrf import csrf_exempt

from demo.gate import version_control

REPOSITORIES = "hg"  # under DEMO_VAR_DIR
PUSH_COMMANDS = ("unbundle", "pushkey")


def repositories_path():
    return os.path.join(settings.DEMO_VAR_DIR, REPOSITORIES)


def demo_repository_path():
    return os.path.join(repositories_path(), "demo")


@csrf_exempt  # the hg client posts bundles; it has no CSRF token, and no session either
def hg_view(request, path_info):
    push = request.GET.get("cmd") in PUSH_COMMANDS
    return version_control(request, "hgweb", path_info, repositories_path(), push)
