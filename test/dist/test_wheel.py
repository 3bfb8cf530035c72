"""The wheel `make dist` builds, as a user gets it: its tags and files, then
installed with pip into a fresh virtualenv whose PATH has no Go, where the
README's thirty seconds run with the installed `wsgate`, `import
wsgate.django` works from plain Python, and a pytest-django suite is
configured from an INI file by wsgate.django.configure().

WSGATE_DIST_DIR names the directory of the wheels (default: dist/ of the
checkout); `make test-dist` builds them first."""

import os
import platform
import queue
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import threading
import urllib.request
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "python", "wsgate")
DIST = os.environ.get("WSGATE_DIST_DIR") or os.path.join(ROOT, "dist")
ARCHES = {"x86_64": 62, "aarch64": 183}  # wheel platform arch -> ELF e_machine
DEADLINE = 120  # seconds a step may hang before the test fails showing its output; never a speed check


def version():
    with open(os.path.join(PACKAGE, "_version.py")) as f:
        return re.search(r'^__version__ = "(.*)"$', f.read(), re.M).group(1)


def wheel(arch):
    name = "wsgate-%s-py3-none-manylinux_2_17_%s.manylinux2014_%s.whl" % (version(), arch, arch)
    path = os.path.join(DIST, name)
    if not os.path.exists(path):
        pytest.fail("%s missing: run `make dist` (it builds the wheels of the current version)" % path)
    return path


def pins(*names):
    """name==version lines of requirements.txt for these packages."""
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        lines = [l.strip() for l in f if "==" in l and not l.startswith("#")]
    found = [l for l in lines if l.split("==")[0].lower() in names]
    assert len(found) == len(names), "requirements.txt pins %s, want %s" % (found, names)
    return found


def checkout_files():
    """The runtime files the binary embeds: path inside the package -> bytes.
    Not the C speedups `make build` compiled for the checkout's interpreter
    (git-ignored, so never packaged: a wheel's workers run pure Python)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(PACKAGE):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".pyc") and not re.match(r"_speedups\..*\.so(\.tmp)?$", name):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    out["wsgate/" + os.path.relpath(path, PACKAGE).replace(os.sep, "/")] = f.read()
    return out


def elf_facts(data):
    """(e_machine, has a PT_INTERP program header) of a 64-bit little-endian ELF."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit little-endian ELF"
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, 3 in types  # PT_INTERP = 3: a dynamic loader would be needed


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_wheel_tags_and_contents(arch):
    with zipfile.ZipFile(wheel(arch)) as z:
        names = z.namelist()
        info = "wsgate-%s.dist-info/" % version()
        wheel_meta = z.read(info + "WHEEL").decode()
        tags = sorted(l.split(": ", 1)[1] for l in wheel_meta.splitlines() if l.startswith("Tag: "))
        assert tags == ["py3-none-manylinux2014_%s" % arch, "py3-none-manylinux_2_17_%s" % arch]
        assert "Root-Is-Purelib: false" in wheel_meta
        assert re.search(r"^Version: %s$" % re.escape(version()), z.read(info + "METADATA").decode(), re.M)
        packaged = {n: z.read(n) for n in names if n.startswith("wsgate/")}
        assert packaged == checkout_files(), "the wheel's wsgate package differs from python/wsgate"
        assert "wsgate/py.typed" in packaged and "wsgate/_version.py" in packaged
        script = "wsgate-%s.data/scripts/wsgate" % version()
        assert (z.getinfo(script).external_attr >> 16) & 0o111, "the binary is not executable"
        machine, dynamic = elf_facts(z.read(script))
        assert machine == ARCHES[arch]
        assert not dynamic, "the binary needs a dynamic loader: not static (CGO_ENABLED=0)"
        others = set(names) - set(packaged) - {script} - {n for n in names if n.startswith(info)}
        assert not others, "unexpected files in the wheel: %s" % sorted(others)


def test_sdist_carries_what_go_build_needs():
    with tarfile.open(os.path.join(DIST, "wsgate-%s.tar.gz" % version())) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for needed in ["go.mod", "cmd/wsgate/main.go", "python/runtime.go", "python/wsgate/_version.py",
                   "python/wsgate/django/embedded.py", "internal/version/version.go", "hatch_build.py",
                   "scripts/version.sh", "pyproject.toml"]:
        assert needed in names
    assert not [n for n in names if n.endswith("_test.go") or n.startswith(("test/", "examples/", "bench/"))]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtualenv with the wheel, Django, pytest, pytest-django and
    mypy installed, and the environment to run it in: its bin/ first on a PATH
    with no Go, an empty runtime cache, no WSGATE_PYTHON."""
    arch = platform.machine()
    if arch not in ARCHES:
        pytest.skip("no wheel is built for %s" % arch)
    root = tmp_path_factory.mktemp("venv")
    home = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=DEADLINE)
    bindir = str(home / "bin")
    path = [bindir] + [d for d in os.environ.get("PATH", "").split(os.pathsep)
                       if d and not os.path.exists(os.path.join(d, "go"))]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WSGATE_", "DJANGO_", "GO", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=os.pathsep.join(path), WSGATE_CACHE_DIR=str(root / "cache"))
    assert shutil.which("go", path=env["PATH"]) is None
    install = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              wheel(arch)] + pins("django", "pytest", "pytest-django", "mypy"),
                             capture_output=True, text=True, env=env, timeout=DEADLINE * 3)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"bin": bindir, "python": os.path.join(bindir, "python"), "env": env, "cache": root / "cache",
            "tmp": root}


def run(venv, argv, cwd=None, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, env=venv["env"], cwd=cwd, timeout=DEADLINE, **kw)
    assert proc.returncode == 0, "%s: exit %d\n%s%s" % (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_pip_check(venv):
    assert "No broken requirements found." in run(venv, [venv["python"], "-m", "pip", "check"]).stdout


def test_import_wsgate_django_from_plain_python(venv):
    out = run(venv, [venv["python"], "-c",
                     "import os, wsgate, wsgate.django; "
                     "from wsgate.django import call_wsgi_app, make_wsgi_view, RoutingArgsMiddleware, configure, "
                     "WSGIRequest; print(wsgate.__version__); print(os.path.dirname(wsgate.__file__))"],
              cwd=str(venv["tmp"])).stdout.split("\n")
    assert out[0] == version()
    assert out[1].startswith(os.path.join(os.path.dirname(venv["bin"]), "lib")) and out[1].endswith("site-packages/wsgate")
    assert os.path.exists(os.path.join(out[1], "py.typed"))


def test_version_says_the_installed_package_is_used(venv):
    out = run(venv, [os.path.join(venv["bin"], "wsgate"), "--version"], cwd=str(venv["tmp"])).stdout.splitlines()
    assert out[0] == "wsgate " + version()
    site = run(venv, [venv["python"], "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    platlib = run(venv, [venv["python"], "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"]).stdout.strip()
    assert out[1] in ("python runtime for %s: installed (%s)" % (os.path.join(venv["bin"], "python3"),
                                                                os.path.join(d, "wsgate")) for d in (site, platlib))


TYPED_USE = '''
from typing import Any, Callable, Dict, Iterable

from django.http import HttpRequest, HttpResponse
from wsgate.django import RoutingArgsMiddleware, call_wsgi_app, configure, make_wsgi_view


def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


view = make_wsgi_view(app)


def embedding(request: HttpRequest, path_info: str) -> HttpResponse:
    return call_wsgi_app(app, request, path_info)


configure("development.ini", overrides={"secret_key": "x"})
'''

MISTYPED_USE = '''
from wsgate.django import configure, make_wsgi_view

configure(42)
make_wsgi_view("not an application")
number: int = make_wsgi_view(lambda environ, start_response: [])
'''


def test_a_type_checker_sees_the_hints(venv, tmp_path):
    (tmp_path / "typed_use.py").write_text(TYPED_USE)
    (tmp_path / "mistyped_use.py").write_text(MISTYPED_USE)
    # Django ships no type hints: its imports are Any. Without py.typed, wsgate's would be too, and nothing below
    # would be found.
    mypy = [venv["python"], "-m", "mypy", "--ignore-missing-imports", "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(mypy + ["typed_use.py"], capture_output=True, text=True, env=venv["env"],
                          cwd=str(tmp_path), timeout=DEADLINE)
    assert proc.returncode == 0 and "Success: no issues found" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run(mypy + ["mistyped_use.py"], capture_output=True, text=True, env=venv["env"],
                          cwd=str(tmp_path), timeout=DEADLINE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'mistyped_use.py:4: error: Argument 1 to "configure" has incompatible type "int"; expected "str"' in proc.stdout
    assert 'mistyped_use.py:5: error: Argument 1 to "make_wsgi_view" has incompatible type "str"' in proc.stdout
    assert 'mistyped_use.py:6: error: Incompatible types in assignment (expression has type "Callable[' in proc.stdout


def readme_thirty_seconds():
    """The INI file and the commands of the README's "Thirty seconds"."""
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("## Thirty seconds", 1)[1].split("\n## ", 1)[0]
    ini = re.search(r"```ini\n(.*?)```", section, re.S).group(1)
    commands = [l.split("#", 1)[0].split() for l in re.search(r"```sh\n(.*?)```", section, re.S).group(1).splitlines()]
    return ini, [c for c in commands if c]


def startproject(venv, where):
    where.mkdir()
    run(venv, [os.path.join(venv["bin"], "django-admin"), "startproject", "mysite"], cwd=str(where))
    return where / "mysite"


class Server:
    """`wsgate serve` running until stop(); its stderr lines in a queue."""

    def __init__(self, argv, venv, cwd):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=venv["env"], cwd=cwd, start_new_session=True)
        self.lines, self.log = queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern):
        while True:
            try:
                line = self.lines.get(timeout=DEADLINE)
            except queue.Empty:
                pytest.fail("no line matching %r in %ds:\n%s" % (pattern, DEADLINE, "".join(self.log)))
            if line is None:
                pytest.fail("wsgate serve exited (%s) before %r:\n%s" % (self.proc.wait(), pattern, "".join(self.log)))
            self.log.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=DEADLINE)


def test_readme_thirty_seconds_with_the_installed_wsgate(venv):
    ini, commands = readme_thirty_seconds()
    assert [c[:2] for c in commands] == [["wsgate", "check"], ["wsgate", "manage"], ["wsgate", "serve"]]
    site = startproject(venv, venv["tmp"] / "readme")
    (site / "development.ini").write_text(ini)
    wsgate = os.path.join(venv["bin"], "wsgate")
    check = run(venv, [wsgate] + commands[0][1:], cwd=str(site))
    assert "development.ini: valid" in check.stdout and "ALLOWED_HOSTS = ['localhost', '127.0.0.1']" in check.stdout
    run(venv, [wsgate] + commands[1][1:], cwd=str(site))
    assert (site / "db.sqlite3").exists()
    serve = [wsgate, "serve", "--bind", "127.0.0.1:0", "--workers", "1"] + commands[2][2:]
    server = Server(serve, venv, str(site))
    try:
        url = server.wait_for(r"wsgate: listening on (http://\S+)").group(1)
        server.wait_for(r"wsgate: ready")
        request = urllib.request.Request(url + "/admin/login/", headers={"Host": "localhost"})
        with urllib.request.urlopen(request, timeout=DEADLINE) as response:
            assert response.status == 200
            assert b"Django administration" in response.read()
    finally:
        assert server.stop() == 0, "".join(server.log)
    # Every Python process wsgate started ran the installed package: the
    # embedded copy was never unpacked.
    assert not list(venv["cache"].glob("runtime-*")), list(venv["cache"].iterdir())


URLS = '''
from django.urls import re_path
from wsgate.django import make_wsgi_view


def hello(environ, start_response):
    from django.conf import settings

    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %s %s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"], settings.GREETING)).encode()]


urlpatterns = [re_path(r"^embedded(?P<path_info>/.*)$", make_wsgi_view(hello))]
'''

TESTS = '''
import pytest


def test_the_view_embeds_the_wsgi_application(client):
    response = client.get("/embedded/some/path")
    assert response.status_code == 200
    assert response.content == b"/embedded /some/path hello from development.ini"


def test_settings_come_from_the_ini_file(settings):
    # Django's test environment adds "testserver" (and turns DEBUG off, as `wsgate test` does too).
    assert settings.ALLOWED_HOSTS == ["localhost", "127.0.0.1", "testserver"]
    assert settings.GREETING == "hello from development.ini"


@pytest.mark.django_db
def test_the_test_database_works(django_user_model):
    django_user_model.objects.create_user("ada")
    assert django_user_model.objects.count() == 1
'''


def django_guide_python(first_line):
    """The ```python block of docs/django.md whose first line is first_line."""
    with open(os.path.join(ROOT, "docs", "django.md")) as f:
        guide = f.read()
    return re.search(r"```python\n(%s\n.*?)```" % re.escape(first_line), guide, re.S).group(1)


@pytest.fixture()
def configured_site(venv, tmp_path):
    """startproject, README's development.ini (plus a setting of our own),
    a URLconf with a make_wsgi_view view, and docs/django.md's manage.py and
    conftest.py, which call wsgate.django.configure()."""
    ini, _ = readme_thirty_seconds()
    site = startproject(venv, tmp_path / "site")
    (site / "development.ini").write_text(ini + 'GREETING = "hello from development.ini"\n')
    (site / "mysite" / "urls.py").write_text(URLS)
    (site / "manage.py").write_text(django_guide_python("#!/usr/bin/env python"))
    (site / "conftest.py").write_text(django_guide_python("# conftest.py, next to development.ini: "
                                                          "pytest-django then finds Django configured"))
    return site


def test_pytest_django_configured_from_the_ini_file(venv, configured_site):
    (configured_site / "test_site.py").write_text(TESTS)
    proc = subprocess.run([venv["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_site.py"],
                          capture_output=True, text=True, env=venv["env"], cwd=str(configured_site),
                          timeout=DEADLINE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^3 passed", proc.stdout, re.M), proc.stdout


def test_manage_py_configured_from_the_ini_file(venv, configured_site):
    run(venv, [venv["python"], "manage.py", "migrate", "--verbosity", "0"], cwd=str(configured_site))
    assert (configured_site / "db.sqlite3").exists()  # the DATABASES of development.ini
    out = run(venv, [venv["python"], "manage.py", "shell", "-c", "from django.conf import settings; "
                     "print(settings.GREETING, settings.DEBUG)"], cwd=str(configured_site)).stdout
    assert out.strip().splitlines()[-1] == "hello from development.ini True"
