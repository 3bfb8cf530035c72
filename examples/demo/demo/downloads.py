"""Downloads that Django authorises and Go sends.

The view at /downloads/NAME checks that the client is logged in and answers
with an X-Accel-Redirect header instead of the file: wsgate's sendfile filter
(base.ini's [filter:downloads]) maps /protected/ to DEMO_VAR_DIR/downloads
and sends the file itself, with ranges and conditional requests, while
Django's worker is already serving someone else.
"""

import mimetypes
import os
import re
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse

DOWNLOADS = "downloads"  # under DEMO_VAR_DIR
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SAMPLE = "wsgate-demo-report.txt"


def downloads_path():
    return os.path.join(settings.DEMO_VAR_DIR, DOWNLOADS)


@login_required
def download(request, name):
    if not SAFE_NAME.match(name) or not os.path.isfile(os.path.join(downloads_path(), name)):
        raise Http404("no such download")
    response = HttpResponse(content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private"
    response["X-Accel-Redirect"] = "/protected/" + quote(name)
    return response


def ensure_sample():
    """The file the home page offers, made on first run. True when made."""
    path = os.path.join(downloads_path(), SAMPLE)
    if os.path.isfile(path):
        return False
    os.makedirs(downloads_path(), exist_ok=True)
    with open(path, "w") as f:
        f.write("A report only logged-in Django users may download.\n")
        f.write("Django checked the session; wsgate's Go master sent these bytes.\n")
        for i in range(1, 2001):
            f.write(f"line {i:04d} of the demo report\n")
    return True
