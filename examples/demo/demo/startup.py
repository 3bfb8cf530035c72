"""Start-up hook named by `startup = demo.startup:prepare` in base.ini.

wsgate runs it once in every worker before the first request, and in
`wsgate manage` before the command: the one place for work a site needs done
before it can serve, whatever the server.
"""

import os

from django.conf import settings


def prepare():
    """Make the state directory, so that `wsgate manage … migrate` on a fresh
    checkout finds a place for the SQLite file (SQLite creates the file, never
    its directory)."""
    os.makedirs(settings.DEMO_VAR_DIR, exist_ok=True)
