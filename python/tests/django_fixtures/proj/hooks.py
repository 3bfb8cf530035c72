# Start-up hooks: each appends a line to the file HOOK_LOG names (a test
# setting), so a test can count how often and when they ran.
from django.conf import settings
from django.apps import apps

CALLS = []


def record():
    CALLS.append("record")
    with open(settings.HOOK_LOG, "a") as f:
        f.write("record apps_ready=%s\n" % apps.ready)


def second():
    CALLS.append("second")
    with open(settings.HOOK_LOG, "a") as f:
        f.write("second\n")


def fail():
    raise RuntimeError("the hook's own failure")
