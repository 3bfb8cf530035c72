"""The compatibility factories: egg:twod.wsgi (twod.wsgi 1.0.1's rules) and
egg:django-pastedeploy-settings (1.0.2's rules), with real Django and
PasteDeploy; django-pastedeploy-settings itself is the oracle for its mode."""

import ast
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402
from djharness import ini, line_of, write  # noqa: E402

TWOD = "wsgate.django.compat:make_twod_app"
DPDS = "wsgate.django.compat:make_dpds_app"


def values(result):
    assert result["ok"], result.get("traceback")
    return {k: ast.literal_eval(v) if k not in ("BASE_DIR",) else v for k, v in result["module"].items()}


# ------------------------------------------------------------------ twod


@pytest.fixture(scope="module")
def twod_base():
    return djharness.run(paste="config:" + ini("twod_base.ini"))


def test_twod_strings_stay_strings_quotes_and_hashes_included(twod_base):
    s = values(twod_base)
    assert s["MY_STRING"] == "Room #12"
    assert s["QUOTED"] == '"Lorem ipsum"'


def test_twod_custom_typecasting_options(twod_base):
    s = values(twod_base)
    assert s["MY_FLAG"] is True
    assert s["MY_COUNT"] == 86400
    assert s["MY_CITIES"] == ("Oxford", "London", "Liverpool")
    assert s["MY_PAIRS"] == (("Europe", "Madrid"), ("Asia", "Tokyo"))
    assert s["MY_MAP"] == {"France": "Paris", "Spain": "Madrid"}
    assert s["MY_MAYBE"] is None


def test_twod_django_setting_names_are_typecast(twod_base):
    s = values(twod_base)
    assert s["USE_I18N"] is False and s["SITE_ID"] == 3 and s["STATIC_URL"] is None


def test_twod_debug_comes_from_default(twod_base):
    assert values(twod_base)["DEBUG"] is False
    assert values(djharness.run(paste="config:" + ini("twod_dev.ini")))["DEBUG"] is True


def test_twod_module_tuples_are_extended(twod_base):
    s = values(twod_base)
    assert s["INSTALLED_APPS"] == ("django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions")
    assert s["ADMINS"] == (("Module Admin", "module@example.com"), ("Gustavo", "foo@example.com"))


def test_twod_module_scalars_are_kept_with_a_warning(twod_base):
    s = values(twod_base)
    assert s["SECRET_KEY"] == "module-secret" and s["EMAIL_PORT"] == 25
    warned = [w for w in twod_base["warnings"] if "SECRET_KEY" in w]
    assert len(warned) == 1
    assert "twod_base.ini:%d [app:main] SECRET_KEY" % line_of(ini("twod_base.ini"), "SECRET_KEY") in warned[0]


def test_twod_module_list_is_kept_not_extended_as_twod_did(tmp_path):
    # twod.wsgi 1.0.1 extended tuples only: a list in the module is a scalar to it.
    path = write(tmp_path, "list.ini", """
[DEFAULT]
debug = false
django_settings_module = compat_settings
twod.tuples = ALLOWED_HOSTS
[app:main]
use = egg:twod.wsgi
ALLOWED_HOSTS = example.com
""")
    result = djharness.run(paste="config:" + path)
    assert values(result)["ALLOWED_HOSTS"] == ["localhost"]
    assert any("ALLOWED_HOSTS is ignored" in w for w in result["warnings"])


def test_twod_paste_configuration_file_and_here(twod_base):
    s = values(twod_base)
    assert s["paste_configuration_file"] == ini("twod_base.ini")
    assert s["MEDIA_ROOT"] == os.path.join(os.path.dirname(ini("twod_base.ini")), "media")


def test_twod_inheritance_across_files():
    s = values(djharness.run(paste="config:" + ini("twod_dev.ini")))
    assert s["MY_COUNT"] == 7  # overridden in twod_dev.ini
    assert s["MY_CITIES"] == ("Oxford", "London", "Liverpool")  # from twod_base.ini
    assert s["paste_configuration_file"] == ini("twod_dev.ini")


def test_twod_serves_webob_requests_by_default(twod_base):
    assert twod_base["app_class"] == "wsgate.django.handler.DjangoApplication"


DEBUG_IN_MODULE = "startproject_settings.py:%d: settings module startproject_settings defines DEBUG" % line_of(
    os.path.join(djharness.PROJ, "startproject_settings.py"), "DEBUG")

TWOD_HEAD = """
[DEFAULT]
debug = false
django_settings_module = compat_settings
[app:main]
use = egg:twod.wsgi
"""


@pytest.mark.parametrize("setting", ["FILE_UPLOAD_PERMISSIONS", "LANGUAGES", "MESSAGE_TAGS", "SERIALIZATION_MODULES"])
def test_twod_refuses_unsupported_settings(tmp_path, setting):
    path = write(tmp_path, "u.ini", TWOD_HEAD + "%s = x\n" % setting)
    result = djharness.run(paste="config:" + path)
    assert not result["ok"] and result["config_error"]
    assert result["error"].startswith("%s:%d [app:main] %s: " % (path, line_of(path, setting), setting))
    assert "not supported" in result["error"]


@pytest.mark.parametrize("text,needle", [
    ("[DEFAULT]\ndebug = false\n[app:main]\nuse = egg:twod.wsgi\n", "django_settings_module is not set"),
    ("[DEFAULT]\ndjango_settings_module = compat_settings\n[app:main]\nuse = egg:twod.wsgi\n", "`debug` must be set"),
    (TWOD_HEAD + "DEBUG = true\n", "[app:main] DEBUG: do not set Django's DEBUG"),
    (TWOD_HEAD.replace("debug = false", "debug = false\nDEBUG = true"), "[DEFAULT] DEBUG: do not set Django's DEBUG"),
    (TWOD_HEAD.replace("compat_settings", "startproject_settings"), DEBUG_IN_MODULE),
    (TWOD_HEAD + "EMAIL_PORT = twenty\n", "[app:main] EMAIL_PORT: 'twenty' is not an integer"),
    (TWOD_HEAD + "USE_I18N = maybe\n", "[app:main] USE_I18N: 'maybe' is not a boolean"),
    (TWOD_HEAD.replace("debug = false", "debug = perhaps"), "[DEFAULT] debug: 'perhaps' is not a boolean"),
    (TWOD_HEAD + "MY_TUPLE = someone\n", "list MY_TUPLE in twod.tuples"),
    (TWOD_HEAD.replace("[app", "twod.dictionaries = MAP\n[app") + "MAP =\n    novalue\n", "has no `=`"),
])
def test_twod_mistakes_are_one_clear_error(tmp_path, text, needle):
    path = write(tmp_path, "bad.ini", text)
    result = djharness.run(paste="config:" + path)
    assert not result["ok"] and result["config_error"], result.get("traceback")
    assert needle in result["error"]
    assert "Traceback" not in result["error"] and "\n" not in result["error"]


def test_twod_error_lines_point_at_the_option(tmp_path):
    path = write(tmp_path, "bad.ini", TWOD_HEAD + "SITE_ID = 1\nEMAIL_PORT = x\n")
    result = djharness.run(paste="config:" + path)
    assert result["error"].startswith("%s:%d [app:main] EMAIL_PORT:" % (path, line_of(path, "EMAIL_PORT")))


# ------------------------------------------------------------------ dpds


@pytest.mark.parametrize("name", ["dpds_base.ini", "dpds_dev.ini"])
def test_dpds_matches_django_pastedeploy_settings(name):
    """Same INI file, same settings module: the real package and wsgate's
    factory leave identical settings and warn about the same names."""
    oracle = djharness.run(paste="config:" + ini(name))
    ours = djharness.run(factory=DPDS, uri="config:" + ini(name))
    assert oracle["ok"] and ours["ok"], (oracle.get("traceback"), ours.get("traceback"))
    assert ours["module"] == oracle["module"]
    assert ours["app_class"] == oracle["app_class"]

    def warned(result):
        return sorted(n for n in result["module"] if any(n in w for w in result["warnings"]))

    assert warned(ours) == warned(oracle) == ["EMAIL_PORT", "SECRET_KEY"]


def test_dpds_rules_spelled_out():
    s = values(djharness.run(factory=DPDS, uri="config:" + ini("dpds_dev.ini")))
    here = os.path.dirname(ini("dpds_base.ini"))
    assert s["MEDIA_ROOT"] == here + "/media"
    assert s["EMAIL_HOST"] == "localhost"  # dpds_dev.ini's DEFAULT wins
    assert s["TEMPLATE_LITERAL"] == "${not_a_variable} and localhost"
    assert s["DEBUG"] is True and s["EMAIL_USE_TLS"] is True
    assert s["INSTALLED_APPS"] == ("django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions")
    assert s["ALLOWED_HOSTS"] == ("localhost", "example.com", "localhost")  # a module list becomes a tuple
    assert s["MY_NUMBERS"] == [1, 2.5, None, True]
    assert s["MY_STRING"] == "caf\u00e9"
    assert s["paste_configuration_file"] == ini("dpds_dev.ini")


DPDS_HEAD = """
[DEFAULT]
debug = false
django_settings_module = compat_settings
[app:main]
use = egg:django-pastedeploy-settings
"""


@pytest.mark.parametrize("text,needle", [
    ("[DEFAULT]\ndebug = false\n[app:main]\nuse = egg:django-pastedeploy-settings\n", "django_settings_module is not set"),
    ("[DEFAULT]\ndjango_settings_module = compat_settings\n[app:main]\nuse = egg:django-pastedeploy-settings\n",
     "`debug` must be set"),
    (DPDS_HEAD + "DEBUG = true\n", "[app:main] DEBUG: Django's DEBUG must not be set"),
    (DPDS_HEAD.replace("compat_settings", "startproject_settings"), DEBUG_IN_MODULE),
    (DPDS_HEAD + "LANGUAGES = []\n", "[app:main] LANGUAGES: Django setting LANGUAGES is not supported"),
    (DPDS_HEAD + "FILE_UPLOAD_PERMISSIONS = 420\n", "[app:main] FILE_UPLOAD_PERMISSIONS: Django setting"),
    (DPDS_HEAD + "MESSAGE_TAGS = {}\n", "[app:main] MESSAGE_TAGS: Django setting"),
    (DPDS_HEAD + "SECRET = bare words\n", "[app:main] SECRET: invalid JSON 'bare words'"),
    (DPDS_HEAD + 'HOST = "${nowhere}"\n', "[app:main] HOST: references ${nowhere}"),
    (DPDS_HEAD.replace("debug = false", "debug = False"), "[DEFAULT] debug: invalid JSON 'False'"),
    (DPDS_HEAD.replace("compat_settings", "no_such_settings"), "no settings module 'no_such_settings'"),
    (DPDS_HEAD + "INSTALLED_APPS = 5\n", "is not a JSON list"),
])
def test_dpds_mistakes_are_one_clear_error_where_the_original_failed_too(tmp_path, text, needle):
    path = write(tmp_path, "bad.ini", text)
    ours = djharness.run(factory=DPDS, uri="config:" + path)
    assert not ours["ok"] and ours["config_error"], ours.get("traceback")
    assert needle in ours["error"] and "\n" not in ours["error"]
    oracle = djharness.run(paste="config:" + path)
    assert not oracle["ok"], "django-pastedeploy-settings accepted what wsgate refused"


def test_dpds_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.ini", DPDS_HEAD + 'GOOD = "x"\nBAD = {oops}\n')
    result = djharness.run(factory=DPDS, uri="config:" + path)
    assert result["error"].startswith("%s:%d [app:main] BAD: invalid JSON" % (path, line_of(path, "BAD")))


def test_dpds_debug_in_default_is_ignored_as_the_original_ignores_it(tmp_path):
    path = write(tmp_path, "d.ini", DPDS_HEAD.replace("debug = false", "debug = false\nDEBUG = true"))
    oracle, ours = djharness.run(paste="config:" + path), djharness.run(factory=DPDS, uri="config:" + path)
    assert values(ours)["DEBUG"] is False
    assert ours["module"] == oracle["module"]


@pytest.mark.parametrize("factory,value,expected", [
    ("make_twod_style", "3", 3),  # SITE_ID: a twod.wsgi integer
    ("make_dpds_style", "[3]", [3]),  # JSON
])
def test_migrated_custom_factories(tmp_path, factory, value, expected):
    path = write(tmp_path, "custom.ini", """
[DEFAULT]
debug = false
django_settings_module = compat_settings
[app:main]
paste.app_factory = custom_factory:%s
SITE_ID = %s
""" % (factory, value))
    body = 'import custom_factory\nemit("steps", custom_factory.STEPS)'
    result = djharness.run(body, paste="config:" + path)
    assert values(result)["SITE_ID"] == expected
    assert result["steps"] == [factory.split("_")[1]]
