"""wsgate.resolve: factory specs to module:qualname, with precise errors."""

import json
import os
import subprocess
import sys

import pytest

from wsgate import resolve

HERE = os.path.dirname(os.path.abspath(__file__))
FAKEPKGS = os.path.join(HERE, "..", "..", "internal", "config", "testdata", "fakepkgs")
RUNTIME = os.path.join(HERE, "..")


@pytest.fixture(autouse=True)
def fakepkgs(monkeypatch):
    monkeypatch.syspath_prepend(os.path.abspath(FAKEPKGS))


def one(**spec):
    spec.setdefault("id", 0)
    [result] = resolve.resolve_all([spec])
    return result


def test_egg_default_entry_is_main():
    r = one(kind="egg", dist="FakeApp", entry="main", object_type="application")
    assert r == {"id": 0, "factory": "fakeapp.apps:make_basic_app", "protocol": "paste.app_factory", "error": ""}


def test_egg_name_is_normalised():
    r = one(kind="egg", dist="Fake_Other", entry="main", object_type="application")
    assert (r["factory"], r["error"]) == ("fakeother:make_app", "")


def test_egg_composite_protocol():
    r = one(kind="egg", dist="FakeApp", entry="switch", object_type="application")
    assert (r["factory"], r["protocol"]) == ("fakeapp.composites:make_switch", "paste.composite_factory")


def test_egg_filter_group_order():
    # "tag" is both a filter_factory and a filter_app_factory: PasteDeploy takes the first.
    r = one(kind="egg", dist="FakeApp", entry="tag", object_type="filter")
    assert (r["factory"], r["protocol"]) == ("fakeapp.filters:make_tag", "paste.filter_factory")
    r = one(kind="egg", dist="FakeApp", entry="wrap", object_type="filter")
    assert r["protocol"] == "paste.filter_app_factory"


def test_egg_server_groups():
    assert one(kind="egg", dist="FakeApp", entry="main", object_type="server")["protocol"] == "paste.server_factory"
    assert one(kind="egg", dist="FakeApp", entry="run", object_type="server")["protocol"] == "paste.server_runner"


def test_missing_distribution():
    r = one(kind="egg", dist="NoSuchDistAnywhere", entry="main", object_type="application")
    assert r["factory"] == ""
    assert r["error"].startswith("no installed distribution named 'NoSuchDistAnywhere' in ")


def test_missing_entry_point_lists_what_is_offered():
    r = one(kind="egg", dist="FakeApp", entry="nope", object_type="filter")
    assert r["error"].startswith("FakeApp 1.0 has no entry point 'nope' in paste.filter_factory, paste.filter_app_factory; it offers ")
    assert "FakeApp#caps (paste.filter_factory)" in r["error"]


def test_ambiguous_entry_point():
    r = one(kind="egg", dist="FakeApp", entry="ambiguous", object_type="application")
    assert "several groups (paste.app_factory, paste.composite_factory)" in r["error"]


def test_entry_point_to_a_broken_module():
    r = one(kind="egg", dist="FakeApp", entry="broken", object_type="application")
    assert r["error"] == (
        "entry point broken = fakeapp.broken:make_app of FakeApp 1.0: "
        "importing fakeapp.broken failed: RuntimeError: this module is broken on purpose"
    )


def test_entry_point_to_a_missing_attribute():
    r = one(kind="egg", dist="FakeApp", entry="missing_attr", object_type="application")
    assert r["error"].endswith("fakeapp.apps has no attribute 'no_such_factory'")


def test_builtin_names_resolve_without_import():
    # wsgate.django may not be importable here; built-ins are resolved by name only.
    for dist, entry, factory in [
        ("wsgate", "django", "wsgate.django.factory:make_wsgi_app"),
        ("twod.wsgi", "main", "wsgate.django.compat:make_twod_app"),
        ("twod_wsgi", "main", "wsgate.django.compat:make_twod_app"),
        ("django-pastedeploy-settings", "main", "wsgate.django.compat:make_dpds_app"),
    ]:
        r = one(kind="egg", dist=dist, entry=entry, object_type="application")
        assert (r["factory"], r["protocol"], r["error"]) == (factory, "paste.app_factory", "")
    assert "is an application, not a filter" in one(kind="egg", dist="wsgate", entry="django", object_type="filter")["error"]


def test_object_specs():
    assert one(kind="object", spec="fakeapp.apps:DescribingApp.__call__")["factory"] == "fakeapp.apps:DescribingApp.__call__"
    assert one(kind="object", spec="fakeapp.apps")["factory"] == "fakeapp.apps"
    assert one(kind="object", spec="fakeapp.apps : make_basic_app")["factory"] == "fakeapp.apps:make_basic_app"
    assert one(kind="object", spec="not a spec!")["error"].startswith("'not a spec!' is not module:object")
    assert one(kind="object", spec="nosuch.module:f")["error"].startswith("no module named 'nosuch'")


def test_call_specs():
    assert one(kind="call", spec="fakeapp.apps:make_basic_app")["factory"] == "fakeapp.apps:make_basic_app"
    assert "as one attribute name" in one(kind="call", spec="fakeapp.apps:DescribingApp.__call__")["error"]
    assert one(kind="call", spec="a:b:c")["error"] == "call: needs exactly module:object, got 'a:b:c'"


def test_import_error_inside_the_module_is_not_a_missing_module(tmp_path, monkeypatch):
    (tmp_path / "needsdep.py").write_text("import dependency_that_is_absent\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = one(kind="object", spec="needsdep:f")
    assert r["error"] == "importing needsdep failed: ModuleNotFoundError: No module named 'dependency_that_is_absent'"


def test_require():
    assert one(kind="require", dist="FakeApp")["error"] == ""
    assert one(kind="require", dist="NotInstalled")["error"].startswith("no installed distribution named 'NotInstalled'")


def test_command_keeps_stdout_for_the_answer(tmp_path):
    (tmp_path / "chatty.py").write_text("print('hello from import')\nraise SystemExit(3)\n")
    request = {"specs": [{"id": 7, "kind": "object", "spec": "chatty:f"}, {"id": 8, "kind": "egg", "dist": "FakeApp", "entry": "caps", "object_type": "filter"}]}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(RUNTIME), str(tmp_path), os.path.abspath(FAKEPKGS)]))
    proc = subprocess.run(
        [sys.executable, "-m", "wsgate.resolve"], input=json.dumps(request), capture_output=True, text=True, env=env, check=True
    )
    answer = json.loads(proc.stdout)
    assert answer["results"][0]["id"] == 7
    assert answer["results"][0]["error"] == "importing chatty failed: SystemExit: 3"
    assert answer["results"][1]["factory"] == "fakeapp.filters:make_caps"
    assert "hello from import" in proc.stderr
    assert "Traceback" not in proc.stderr
