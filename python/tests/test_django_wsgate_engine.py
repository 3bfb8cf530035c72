"""The same fixture INI files through wsgate's own engine (the real binary:
internal/config builds the worker-form node, `wsgate manage` loads it) and
through Python's PasteDeploy: the Django settings must be identical, in the
three modes, with inheritance across files."""

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402
from djharness import ini  # noqa: E402

BIN = os.environ.get("WSGATE_BIN") or os.path.join(djharness.RUNTIME, "..", "bin", "wsgate")

DUMP = ("import json, os, sys; m = sys.modules[os.environ['DJANGO_SETTINGS_MODULE']]; "
        "print('DUMP' + json.dumps({n: repr(getattr(m, n)) for n in dir(m) "
        "if n.isupper() or n == 'paste_configuration_file'}))")


def through_wsgate(ini_path):
    if not os.path.exists(BIN):
        pytest.skip("wsgate binary %s missing: run `make build`" % BIN)
    env = dict(os.environ, WSGATE_PYTHON=sys.executable)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([BIN, "manage", "--pythonpath", djharness.PROJ, ini_path, "shell", "-c", DUMP],
                          capture_output=True, text=True, env=env, cwd=djharness.PROJ, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = [l for l in proc.stdout.splitlines() if l.startswith("DUMP")][0]
    return json.loads(line[4:])


@pytest.mark.parametrize("name", ["twod_dev.ini", "dpds_dev.ini", "native_dev.ini", "native_base.ini", "here_dev.ini"])
def test_wsgate_engine_and_pastedeploy_give_the_same_settings(name):
    reference = djharness.run(paste="config:" + ini(name))
    assert reference["ok"], reference.get("traceback")
    assert through_wsgate(ini(name)) == reference["module"]


def test_here_is_the_outermost_files_directory_percent_here_the_writing_files():
    settings = through_wsgate(ini("here_dev.ini"))
    assert settings["DOLLAR_HERE"] == repr(os.path.dirname(ini("here_dev.ini")))
    assert settings["DOLLAR_FILE"] == repr(ini("here_dev.ini"))
    assert settings["PERCENT_HERE"] == repr(os.path.join(os.path.dirname(ini("here_dev.ini")), "sub"))
