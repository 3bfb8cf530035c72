"""wsgate.django.configure(): Django configured from an INI file by the
project's own interpreter (manage.py, pytest), through the real binary's
hidden `worker-tree` command, must give exactly what `wsgate manage` gives."""

import json
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402
from djharness import ini  # noqa: E402
from test_django_wsgate_engine import BIN, DUMP, through_wsgate  # noqa: E402


def binary_version():
    if not os.path.exists(BIN):
        pytest.skip("wsgate binary %s missing: run `make build`" % BIN)
    out = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].split()[1]


def package_of_version(tmp_path, version):
    """A copy of the checkout's wsgate package claiming ``version`` (the
    binary's, or another): the package configure() runs in."""
    site = tmp_path / "site"
    shutil.copytree(os.path.join(djharness.RUNTIME, "wsgate"), site / "wsgate",
                    ignore=shutil.ignore_patterns("__pycache__", "_version.py"))
    (site / "wsgate" / "_version.py").write_text("__version__ = %r\n" % version)
    return str(site)


def configure_in_child(site, body, cwd=djharness.PROJ):
    """Run ``body`` in a fresh interpreter (Django has one configuration per
    process) whose wsgate package is the one in ``site``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([site, djharness.PROJ]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("WSGATE_PYTHON", None)
    return subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("name", ["native_dev.ini", "twod_dev.ini", "dpds_dev.ini"])
def test_configure_gives_the_settings_wsgate_manage_gives(tmp_path, name):
    site = package_of_version(tmp_path, binary_version())
    proc = configure_in_child(site, "from wsgate.django import configure; configure(%r, wsgate=%r); "
                                    "configure(%r, wsgate=%r); %s" % (ini(name), BIN, ini(name), BIN, DUMP))
    assert proc.returncode == 0, proc.stderr
    line = [l for l in proc.stdout.splitlines() if l.startswith("DUMP")][0]
    assert json.loads(line[4:]) == through_wsgate(ini(name))


def test_configure_reports_a_mistake_as_wsgate_manage_does(tmp_path):
    bad = djharness.write(tmp_path, "bad.ini", """
[DEFAULT]
django_settings_module = startproject_settings

[app:main]
use = egg:wsgate#django
SECRET_KEY = abc
""")
    site = package_of_version(tmp_path, binary_version())
    proc = configure_in_child(site, "from wsgate.django import configure, DjangoConfigError\n"
                                    "try:\n    configure(%r, wsgate=%r)\n"
                                    "except DjangoConfigError as exc:\n    print('ERROR', exc)\n" % (bad, BIN))
    assert proc.returncode == 0, proc.stderr
    manage = subprocess.run([BIN, "manage", "--python", sys.executable, "--pythonpath", djharness.PROJ, bad,
                             "check"], capture_output=True, text=True, timeout=120)
    assert manage.returncode == 1
    expected = manage.stderr.strip().replace("wsgate manage: ", "", 1)
    assert expected.startswith("%s:6 [app:main] SECRET_KEY: invalid JSON" % bad)
    assert proc.stdout.strip() == "ERROR " + expected


def test_configure_refuses_a_binary_of_another_version(tmp_path):
    site = package_of_version(tmp_path, "0.0.1+other")
    proc = configure_in_child(site, "from wsgate.django import configure; configure(%r, wsgate=%r)"
                                    % (ini("native_dev.ini"), BIN))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "DjangoConfigError" in last and "is wsgate %s, but this Python package is 0.0.1+other" % binary_version() in last


def test_configure_without_a_binary_says_how_to_get_one(tmp_path):
    site = package_of_version(tmp_path, binary_version())
    body = ("import os, shutil, wsgate.django.ini as i; i.sysconfig.get_path = lambda name: %r; "
            "os.environ['PATH'] = %r; assert shutil.which('wsgate') is None; i.configure('x.ini')"
            % (str(tmp_path), str(tmp_path)))
    proc = configure_in_child(site, body)
    assert proc.returncode != 0
    assert "no wsgate binary in %s nor on PATH (pip install wsgate" % tmp_path in proc.stderr
