"""python -m wsgate.django.settings_report: what `wsgate check` shows for a
Django application: every setting with its origin, secrets masked, and
configuration mistakes as one line."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402


def report(tree):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([djharness.RUNTIME, djharness.PROJ]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run([sys.executable, "-m", "wsgate.django.settings_report"], input=json.dumps(tree),
                          capture_output=True, text=True, env=env, cwd=djharness.PROJ, timeout=60)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def django_node(local_conf, local_sources, factory="wsgate.django.factory:make_wsgi_app"):
    # The worker form as internal/config writes it.
    return {
        "object_type": "application", "protocol": "paste.app_factory", "use": "egg:wsgate#django",
        "factory": factory,
        "global_conf": {"debug": "false", "django_settings_module": "startproject_settings",
                        "here": "/srv/site", "__file__": "/srv/site/dev.ini"},
        "local_conf": local_conf,
        "source": "dev.ini:5 [app:main]",
        "global_conf_sources": {"debug": "dev.ini:2 [DEFAULT] debug",
                                "django_settings_module": "dev.ini:3 [DEFAULT] django_settings_module"},
        "local_conf_sources": local_sources,
    }


def test_every_setting_with_its_origin_inside_a_composite():
    node = django_node(
        {"SECRET_KEY": '"ini-secret"', "MEDIA_ROOT": '"${here}/media"',
         "extend INSTALLED_APPS": '["django.contrib.humanize"]'},
        {"SECRET_KEY": "dev.ini:7 [app:main] SECRET_KEY", "MEDIA_ROOT": "dev.ini:8 [app:main] MEDIA_ROOT",
         "extend INSTALLED_APPS": "dev.ini:9 [app:main] extend INSTALLED_APPS"})
    tree = {"object_type": "application", "protocol": "paste.composite_factory", "factory": "x:y",
            "loadable": {"/": node}}
    status, out, stderr = report(tree)
    assert status == 0, (out, stderr)
    assert out["mode"] == "native" and out["settings_module"] == "startproject_settings"
    origins = {s["name"]: s["origin"] for s in out["settings"]}
    values = {s["name"]: s["value"] for s in out["settings"]}
    assert origins["SECRET_KEY"] == "dev.ini:7 [app:main] SECRET_KEY"
    assert values["SECRET_KEY"] != repr("ini-secret") and "*" in values["SECRET_KEY"]  # masked
    assert origins["MEDIA_ROOT"] == "dev.ini:8 [app:main] MEDIA_ROOT" and values["MEDIA_ROOT"] == repr("/srv/site/media")
    assert origins["DEBUG"] == "dev.ini:2 [DEFAULT] debug" and values["DEBUG"] == "False"
    assert origins["INSTALLED_APPS"] == ("module startproject_settings + dev.ini:9 [app:main] extend INSTALLED_APPS"
                                         " (extend)")
    assert origins["TIME_ZONE"] == "module startproject_settings"


def test_compat_mode_reports_kept_values_as_warnings():
    node = django_node({"SECRET_KEY": '"ini"', "NEW_ONE": "1"},
                       {"SECRET_KEY": "dev.ini:7 [app:main] SECRET_KEY", "NEW_ONE": "dev.ini:8 [app:main] NEW_ONE"},
                       factory="wsgate.django.compat:make_dpds_app")
    node["global_conf"]["django_settings_module"] = "compat_settings"
    status, out, _ = report(node)
    assert status == 0, out
    origins = {s["name"]: s["origin"] for s in out["settings"]}
    assert out["mode"] == "dpds" and origins["NEW_ONE"] == "dev.ini:8 [app:main] NEW_ONE"
    assert origins["SECRET_KEY"] == "module compat_settings"
    assert any(w.startswith("dev.ini:7 [app:main] SECRET_KEY is ignored") for w in out["warnings"])


def test_mistake_is_one_line():
    node = django_node({"ALLOWED_HOSTS": '"not a list"'}, {"ALLOWED_HOSTS": "dev.ini:7 [app:main] ALLOWED_HOSTS"})
    status, out, _ = report(node)
    assert status == 1
    assert out["error"].startswith("dev.ini:7 [app:main] ALLOWED_HOSTS: Django rejects the settings: ImproperlyConfigured")


def test_tree_without_django():
    status, out, _ = report({"object_type": "application", "factory": "some.app:make"})
    assert status == 0 and out == {"settings": []}


def test_serving_gives_the_static_and_media_places_as_plain_values():
    # What django_full serves from Go: plain strings, roots made absolute
    # from the working directory (the workers' one), STATIC_ROOT unset is "".
    node = django_node({"SECRET_KEY": '"s"', "MEDIA_ROOT": '"uploads"', "MEDIA_URL": '"/m/"'},
                       {"SECRET_KEY": "dev.ini:7 [app:main] SECRET_KEY", "MEDIA_ROOT": "dev.ini:8 [app:main] MEDIA_ROOT",
                        "MEDIA_URL": "dev.ini:9 [app:main] MEDIA_URL"})
    status, out, stderr = report(node)
    assert status == 0, (out, stderr)
    # The module's STATIC_URL = "static/" with the script prefix, as Django's templates write it.
    import django

    admin_static = os.path.join(os.path.dirname(django.__file__), "contrib", "admin", "static")
    assert out["serving"] == {
        "debug": False, "staticfiles": True, "finder_dirs": [admin_static], "other_finders": [],
        "static_url": "/static/", "static_root": "",
        "media_url": "/m/", "media_root": os.path.join(djharness.PROJ, "uploads"),
    }
    node["local_conf"]["STATIC_ROOT"] = '"${here}/collected"'
    status, out, stderr = report(node)
    assert status == 0, (out, stderr)
    assert out["serving"]["static_root"] == "/srv/site/collected"
    node["local_conf"]["STATICFILES_DIRS"] = '["assets", ["vendor", "/srv/vendor"]]'
    status, out, stderr = report(node)
    assert status == 0, (out, stderr)
    assert out["serving"]["finder_dirs"][0] == os.path.join(djharness.PROJ, "assets")
    assert out["serving"]["other_finders"] == ["STATICFILES_DIRS entry with prefix 'vendor'"]
