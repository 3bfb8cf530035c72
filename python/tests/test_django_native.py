"""The native factory, use = egg:wsgate#django: JSON values that override
the settings module, ${var}, here/__file__, debug wins, `extend NAME`,
WSGI_APPLICATION, start-up hooks, custom factories; and its errors."""

import ast
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402
from djharness import ini, line_of, write  # noqa: E402

NATIVE = "wsgate.django.factory:make_wsgi_app"
INI_DIR = os.path.dirname(ini("native_base.ini"))


def values(result):
    assert result["ok"], result.get("traceback")
    return {k: ast.literal_eval(v) for k, v in result["module"].items() if k != "BASE_DIR"}


@pytest.fixture(scope="module")
def base():
    return values(djharness.run(paste="config:" + ini("native_base.ini")))


@pytest.fixture(scope="module")
def dev():
    return values(djharness.run(paste="config:" + ini("native_dev.ini")))


def test_ini_values_override_the_module(base):
    assert base["SECRET_KEY"] == "ini-secret"
    assert base["ALLOWED_HOSTS"] == ["example.com", "localhost"]


def test_values_are_json_and_may_span_lines(base):
    assert base["DATABASES"]["default"]["NAME"] == INI_DIR + "/data/db.sqlite3"
    assert base["PORT_NUMBER"] == 8025  # ${port} outside a string: a number


def test_here_file_and_escapes(base):
    assert base["MEDIA_ROOT"] == INI_DIR + "/media"
    assert base["CONFIG_FILE"] == ini("native_base.ini")
    assert base["ESCAPED"] == "${kept}"


def test_substitution_inside_a_string_is_json_escaped(base):
    assert base["ODD_PATH"] == INI_DIR + '/with "quote\\ and backslash'


def test_extend_appends_to_module_lists_and_django_defaults(base):
    assert base["INSTALLED_APPS"][-1] == "django.contrib.humanize"
    assert base["INSTALLED_APPS"][0] == "django.contrib.admin" and len(base["INSTALLED_APPS"]) == 7
    assert base["MIDDLEWARE"][-1] == "wsgate.django.RoutingArgsMiddleware"
    assert base["AUTHENTICATION_BACKENDS"] == ["django.contrib.auth.backends.ModelBackend",
                                               "django.contrib.auth.backends.RemoteUserBackend"]


def test_debug_wins_over_the_module(base, dev):
    assert base["DEBUG"] is False  # the module says True; debug = false wins
    assert dev["DEBUG"] is True


def test_inheritance_across_files(dev):
    assert dev["SECRET_KEY"] == "dev-secret"
    assert dev["ALLOWED_HOSTS"] == ["example.com", "localhost"]
    assert dev["paste_configuration_file"] == ini("native_dev.ini")


def test_extend_keeps_a_tuple_a_tuple():
    result = djharness.run(factory=NATIVE, global_conf={"django_settings_module": "compat_settings"},
                           local_conf={"extend INSTALLED_APPS": '["django.contrib.sessions"]'})
    assert values(result)["INSTALLED_APPS"] == ("django.contrib.contenttypes", "django.contrib.auth",
                                                "django.contrib.sessions")


def test_django_sees_the_settings():
    body = """
from django.conf import settings
emit("seen", [settings.SECRET_KEY, settings.DEBUG, list(settings.INSTALLED_APPS)[-1]])
"""
    result = djharness.run(body, paste="config:" + ini("native_dev.ini"))
    assert result["seen"] == ["dev-secret", True, "django.contrib.humanize"]


def test_wsgi_application_setting_is_what_gets_served():
    body = """
from webtest import TestApp
r = TestApp(app).get("/settings/?names=SECRET_KEY", extra_environ={"HTTP_HOST": "localhost"})
emit("header", r.headers.get("X-Project-Wsgi"))
emit("json", r.json)
"""
    result = djharness.run(body, paste="config:" + ini("native_dev.ini"))
    assert result["ok"], result.get("traceback")
    assert result["header"] == "applied"  # site_wsgi.py's WSGI middleware ran
    assert result["json"] == {"SECRET_KEY": "'dev-secret'"}


def test_without_wsgi_application_wsgate_serves_webob_requests():
    # (serve_static off: with the module's DEBUG = True, StaticFilesHandler would wrap it)
    result = djharness.run(factory=NATIVE, global_conf={"django_settings_module": "startproject_settings"},
                           local_conf={"WSGI_APPLICATION": "null", "serve_static": "false"})
    assert result["app_class"] == "wsgate.django.handler.DjangoApplication"


def test_custom_factory_wrapping_wsgate(tmp_path):
    path = write(tmp_path, "custom.ini", """
[DEFAULT]
debug = true
django_settings_module = startproject_settings
[app:main]
paste.app_factory = custom_factory:make_app
SECRET_KEY = "custom"
""")
    body = """
from webtest import TestApp
from django.conf import settings
r = TestApp(app).get("/settings/?names=SECRET_KEY", extra_environ={"HTTP_HOST": "localhost"})
emit("header", r.headers.get("X-Custom-Factory"))
emit("json", r.json)
"""
    result = djharness.run(body, paste="config:" + path)
    assert result["ok"], result.get("traceback")
    assert result["header"] == "before,after"
    assert result["json"] == {"SECRET_KEY": "'custom'"}


def test_startup_hooks_run_once_after_django_is_loaded(tmp_path):
    log = tmp_path / "hooks.log"
    path = write(tmp_path, "hooks.ini", """
[DEFAULT]
debug = false
django_settings_module = startproject_settings
[app:main]
use = egg:wsgate#django
startup = hooks:record hooks:second
HOOK_LOG = "%s"
""" % log)
    body = """
from wsgate.django.factory import make_wsgi_app
import hooks
again = make_wsgi_app(global_conf, **local_conf)  # the same configuration again in this process
emit("calls", hooks.CALLS)
"""
    result = djharness.run(body, factory=NATIVE, uri="config:" + path)
    assert result["ok"], result.get("traceback")
    assert result["calls"] == ["record", "second"]
    assert log.read_text() == "record apps_ready=True\nsecond\n"


def test_startup_hooks_in_compat_modes(tmp_path):
    log = tmp_path / "hooks.log"
    path = write(tmp_path, "hooks.ini", """
[DEFAULT]
debug = false
django_settings_module = compat_settings
startup = hooks:record
[app:main]
use = egg:twod.wsgi
HOOK_LOG = %s
""" % log)
    result = djharness.run(paste="config:" + path)
    assert result["ok"], result.get("traceback")
    assert log.read_text() == "record apps_ready=True\n"


HEAD = """
[DEFAULT]
debug = false
django_settings_module = startproject_settings
port = 80
[app:main]
use = egg:wsgate#django
"""


@pytest.mark.parametrize("option,text,needle", [
    ("SECRET_KEY", 'SECRET_KEY = bare words\n', "values are JSON: a string needs double quotes"),
    ("DATABASES", 'DATABASES = {"default": }\n', "invalid JSON"),
    ("MEDIA_ROOT", 'MEDIA_ROOT = "${nowhere}/media"\n', "references ${nowhere}, which is not defined in [DEFAULT]"),
    ("secret_key", 'secret_key = "x"\n', "'secret_key' is not a Django setting name"),
    ("extend INSTALLED_APPS", 'extend INSTALLED_APPS = "django.contrib.humanize"\n', "needs a JSON list"),
    ("extend NO_SUCH_LIST", 'extend NO_SUCH_LIST = ["x"]\n', "neither startproject_settings nor Django's defaults"),
    ("extend SECRET_KEY", 'extend SECRET_KEY = ["x"]\n', "SECRET_KEY is a str, not a list"),
    ("ALLOWED_HOSTS", 'ALLOWED_HOSTS = "example.com"\n', "Django rejects the settings: ImproperlyConfigured"),
    ("INSTALLED_APPS", 'INSTALLED_APPS = ["no_such_app"]\n', "Django rejects the settings: ModuleNotFoundError"),
    ("WSGI_APPLICATION", 'WSGI_APPLICATION = "site_wsgi.nothing_here"\n', "WSGI_APPLICATION 'site_wsgi.nothing_here' cannot be loaded"),
    ("startup", 'startup = hooks:no_such_hook\n', "start-up hook hooks:no_such_hook: module hooks has no no_such_hook"),
    ("startup", 'startup = hooks.fail\n', "must be written module:function"),
    ("startup", 'startup = hooks:fail\n', "start-up hook hooks:fail failed: RuntimeError: the hook's own failure"),
    ("serve_static", 'serve_static = sometimes\n', "'sometimes' is not a boolean"),
])
def test_mistakes_are_one_clear_error_naming_file_line_and_option(tmp_path, option, text, needle):
    path = write(tmp_path, "bad.ini", HEAD + text)
    result = djharness.run(paste="config:" + path)
    assert not result["ok"] and result["config_error"], result.get("traceback")
    assert result["error"].startswith("%s:%d [app:main] %s: " % (path, line_of(path, option), option)), result["error"]
    assert needle in result["error"]
    assert "\n" not in result["error"]


def test_debug_that_is_not_a_boolean(tmp_path):
    path = write(tmp_path, "bad.ini", HEAD.replace("debug = false", "debug = sometimes"))
    result = djharness.run(paste="config:" + path)
    assert result["error"].startswith("%s:%d [DEFAULT] debug: 'sometimes' is not a boolean" % (path, line_of(path, "debug")))


def test_unknown_settings_module(tmp_path):
    path = write(tmp_path, "bad.ini", HEAD.replace("startproject_settings", "mysite.no_settings"))
    result = djharness.run(paste="config:" + path)
    assert result["error"].startswith("%s:%d [DEFAULT] django_settings_module: no settings module 'mysite.no_settings'"
                                      % (path, line_of(path, "django_settings_module")))


def test_settings_module_that_fails_to_import_names_its_line(tmp_path):
    path = write(tmp_path, "bad.ini", HEAD.replace("startproject_settings", "broken_settings"))
    result = djharness.run(paste="config:" + path)
    assert "settings module 'broken_settings' failed to import: ModuleNotFoundError" in result["error"]
    assert "broken_settings.py:2)" in result["error"]


def test_missing_settings_module_option(tmp_path):
    path = write(tmp_path, "bad.ini", "[app:main]\nuse = egg:wsgate#django\n")
    result = djharness.run(paste="config:" + path)
    assert result["error"].startswith("%s:1 [app:main]: django_settings_module is not set" % path)


def test_debug_wins_over_DEBUG_in_the_ini_with_a_warning(tmp_path):
    path = write(tmp_path, "d.ini", HEAD + "DEBUG = true\n")
    result = djharness.run(paste="config:" + path)
    assert values(result)["DEBUG"] is False
    assert any("[app:main] DEBUG is ignored: `debug`" in w for w in result["warnings"])


def test_without_debug_the_module_or_ini_decides(tmp_path):
    path = write(tmp_path, "d.ini", HEAD.replace("debug = false\n", "") + "DEBUG = false\n")
    assert values(djharness.run(paste="config:" + path))["DEBUG"] is False
    path = write(tmp_path, "e.ini", HEAD.replace("debug = false\n", ""))
    assert values(djharness.run(paste="config:" + path))["DEBUG"] is True


def test_a_second_configuration_in_one_process_is_refused():
    body = """
from wsgate.django.factory import make_wsgi_app
try:
    make_wsgi_app({"django_settings_module": "compat_settings"})
except Exception as exc:
    emit("second", [str(exc), bool(getattr(exc, "wsgate_config_error", False))])
"""
    result = djharness.run(body, factory=NATIVE, global_conf={"django_settings_module": "startproject_settings"})
    message, config_error = result["second"]
    assert config_error and "a second Django configuration in one process" in message
    assert "egg:wsgate#urlmap" in message  # the remedy is a pool each, under one server


def test_manage_refuses_a_tree_without_django(tmp_path):
    import json
    import subprocess

    node = tmp_path / "node.json"
    node.write_text(json.dumps({"object_type": "application", "protocol": "wsgate.callable",
                                "factory": "wsgiref.simple_server:demo_app", "global_conf": {}, "local_conf": {},
                                "source": "plain.ini:1 [app:main]"}))
    env = dict(os.environ, PYTHONPATH=djharness.RUNTIME)
    proc = subprocess.run([sys.executable, "-m", "wsgate.django.manage", str(node), "check"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("wsgate manage: plain.ini:1 [app:main]: this application configures no Django "
                                   "project (no egg:wsgate#django, egg:twod.wsgi or egg:django-pastedeploy-settings "
                                   "application in it)")


def test_manage_loads_the_django_app_a_go_component_routes_to(tmp_path):
    import json
    import subprocess

    django_app = {"object_type": "application", "protocol": "paste.app_factory", "use": "egg:wsgate#django",
                  "factory": "wsgate.django.factory:make_wsgi_app",
                  "global_conf": {"django_settings_module": "startproject_settings"},
                  "local_conf": {"FROM_INI": '"routed"'}, "source": "site.ini:9 [app:django]"}
    tree = {"object_type": "application", "protocol": "paste.composite_factory", "use": "egg:Paste#urlmap",
            "factory": "go:urlmap", "global_conf": {}, "local_conf": {"/": "django"},
            "loadable": {"django": django_app}, "source": "site.ini:1 [composite:main]"}
    node = tmp_path / "node.json"
    node.write_text(json.dumps(tree))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([djharness.RUNTIME, djharness.PROJ]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run([sys.executable, "-m", "wsgate.django.manage", str(node), "shell", "-c",
                           "from django.conf import settings; print(settings.FROM_INI)"],
                          capture_output=True, text=True, env=env, cwd=djharness.PROJ, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("routed")


# Requests through the application the factory returned, as a server sends them.
GET = """
from wsgiref.util import setup_testing_defaults
import django.contrib.admin

def get(path):
    environ = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen = {}
    body = b"".join(app(environ, lambda status, headers, exc_info=None: seen.setdefault("status", status)))
    return seen["status"], body

static = get("/static/admin/css/base.css")
with open(os.path.join(os.path.dirname(django.contrib.admin.__file__), "static", "admin", "css", "base.css"), "rb") as f:
    emit("static", [static[0], static[1] == f.read()])
emit("page", get("/settings/")[0])
"""


@pytest.mark.parametrize("debug,option,served", [
    ("true", "", True),
    ("true", "serve_static = false\n", False),
    ("false", "", False),
    ("false", "serve_static = true\n", False),
])
def test_static_files_in_development_as_runserver_serves_them(tmp_path, debug, option, served):
    path = write(tmp_path, "static.ini", HEAD.replace("debug = false", "debug = " + debug) + option
                 + 'ALLOWED_HOSTS = ["127.0.0.1"]\n')
    result = djharness.run(GET, paste="config:" + path)
    assert result["ok"], result.get("traceback")
    if served:
        assert result["static"] == ["200 OK", True]
    else:
        assert result["static"][0].startswith("404 ")
    assert result["page"] == "200 OK"  # every other request reaches Django


def test_static_files_need_staticfiles_installed(tmp_path):
    path = write(tmp_path, "static.ini", HEAD.replace("debug = false", "debug = true")
                 + 'ALLOWED_HOSTS = ["127.0.0.1"]\n'
                 + 'INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",'
                 + ' "django.contrib.sessions", "django.contrib.messages"]\n')
    result = djharness.run(GET, paste="config:" + path)
    assert result["ok"], result.get("traceback")
    assert result["static"][0].startswith("404 ")


def test_static_files_without_static_url_is_one_clear_error(tmp_path):
    path = write(tmp_path, "static.ini", HEAD.replace("debug = false", "debug = true") + "STATIC_URL = null\n")
    result = djharness.run(paste="config:" + path)
    assert not result["ok"] and result["config_error"], result.get("traceback")
    assert result["error"].startswith("%s:%d [app:main] STATIC_URL: serving static files in development"
                                      % (path, line_of(path, "STATIC_URL"))), result["error"]
    assert "STATIC_URL setting" in result["error"] and "serve_static = false" in result["error"]
