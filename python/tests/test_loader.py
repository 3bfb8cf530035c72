"""wsgate.loader: WSGI applications from worker-form nodes, called with
PasteDeploy's factory signatures (real factories: testdata/fakepkgs and
Paste's urlmap)."""

import json
import os
import sys

import pytest

from wsgate import loader

HERE = os.path.dirname(os.path.abspath(__file__))
FAKEPKGS = os.path.abspath(os.path.join(HERE, "..", "..", "internal", "config", "testdata", "fakepkgs"))


@pytest.fixture(autouse=True)
def fakepkgs(monkeypatch):
    monkeypatch.syspath_prepend(FAKEPKGS)


def app_node(factory="fakeapp.apps:make_basic_app", protocol="paste.app_factory", local=None, glob=None, source="t.ini:1 [app:main]"):
    return {
        "object_type": "application",
        "protocol": protocol,
        "use": "call:" + factory,
        "factory": factory,
        "global_conf": {"here": "/srv", "__file__": "/srv/t.ini", **(glob or {})},
        "local_conf": local or {},
        "source": source,
    }


def filter_node(factory, protocol="paste.filter_factory", local=None, source="t.ini:9 [filter:f]"):
    return {
        "object_type": "filter",
        "protocol": protocol,
        "use": "call:" + factory,
        "factory": factory,
        "global_conf": {},
        "local_conf": local or {},
        "source": source,
    }


def get(app, path="/"):
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
    }
    status = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return status[0], json.loads(body) if body.startswith(b"{") else body


def test_app_factory_gets_global_and_local_conf():
    app = loader.load(app_node(local={"greeting": "hi"}, glob={"debug": "true"}))
    status, body = get(app)
    assert status == "200 OK"
    assert body == {"app": "basic", "local_conf": {"greeting": "hi"}, "global_conf": {"debug": "true"}, "filters": []}


def test_factory_gets_a_copy_of_the_node_confs():
    node = app_node(local={"a": "1"})
    loader.load(node)
    node_before = json.dumps(node, sort_keys=True)
    loader.load(node)
    assert json.dumps(node, sort_keys=True) == node_before


def test_pipeline_applies_filters_first_listed_outermost():
    node = {
        "object_type": "pipeline", "protocol": None, "global_conf": {}, "local_conf": {},
        "filters": [
            filter_node("fakeapp.filters:make_tag", local={"n": "1"}),
            filter_node("fakeapp.filters:make_caps"),
            filter_node("fakeapp.filters:make_wrap", protocol="paste.filter_app_factory", local={"how": "x"}),
        ],
        "app": app_node(),
        "source": "t.ini:3 [pipeline:main]",
    }
    assert get(loader.load(node))[1]["filters"] == ["tag(n=1)", "caps", "wrap(how=x)"]


def test_filter_with_and_filter_app():
    filtered = {
        "object_type": "filtered_with", "protocol": None, "global_conf": {}, "local_conf": {},
        "filter": filter_node("fakeapp.filters:make_caps"),
        "next": app_node(),
        "source": "t.ini:1 [app:main]",
    }
    assert get(loader.load(filtered))[1]["filters"] == ["caps"]
    filter_app = {
        "object_type": "filter_app", "protocol": None, "global_conf": {}, "local_conf": {},
        "filter": filter_node("fakeapp.filters:make_wrap", protocol="paste.filter_app_factory"),
        "next": filtered,
        "source": "t.ini:5 [filter-app:outer]",
    }
    assert get(loader.load(filter_app))[1]["filters"] == ["wrap", "caps"]


def test_filter_with_chain_on_a_filter():
    # [app:main] filter-with = outer; [filter:outer] filter-with = inner: inner wraps outer wraps the app.
    outer = {
        "object_type": "filtered_with", "protocol": None, "global_conf": {}, "local_conf": {},
        "filter": filter_node("fakeapp.filters:make_caps", local={"name": "inner"}),
        "next": filter_node("fakeapp.filters:make_tag", local={"name": "outer"}),
    }
    node = {"object_type": "filtered_with", "protocol": None, "global_conf": {}, "local_conf": {}, "filter": outer, "next": app_node()}
    assert get(loader.load(node))[1]["filters"] == ["caps(name=inner)", "tag(name=outer)"]


def test_composite_with_pastes_urlmap():
    node = app_node("paste.urlmap:urlmap_factory", protocol="paste.composite_factory", local={"/": "home", "/blog": "blog"})
    node["loadable"] = {
        "home": app_node(local={"page": "home"}),
        "blog": {
            "object_type": "pipeline", "protocol": None, "global_conf": {}, "local_conf": {},
            "filters": [filter_node("fakeapp.filters:make_tag")],
            "app": app_node("fakeapp.apps:make_other_app", local={"page": "blog"}),
        },
    }
    app = loader.load(node)
    assert get(app, "/")[1]["local_conf"] == {"page": "home"}
    status, body = get(app, "/blog/post")
    assert (body["app"], body["filters"]) == ("other", ["tag"])


def test_composite_asking_for_an_unknown_name():
    node = app_node("fakeapp.composites:make_switch", protocol="paste.composite_factory", local={"choose": "x", "x": "ghost"})
    node["loadable"] = {}
    with pytest.raises(loader.LoadError) as info:
        loader.load(node)
    assert "asked for 'ghost', which none of its settings names" in str(info.value)


def test_wsgate_callable_is_the_app_itself():
    node = {"object_type": "application", "protocol": "wsgate.callable", "factory": "fakeapp.apps:DescribingApp",
            "global_conf": {}, "local_conf": {}}
    assert loader.load(node) is __import__("fakeapp.apps").apps.DescribingApp


def test_current_node_while_a_factory_runs(tmp_path, monkeypatch):
    (tmp_path / "peek.py").write_text(
        "from wsgate import loader\n"
        "seen = []\n"
        "def make(global_conf, **local_conf):\n"
        "    seen.append(loader.current_node())\n"
        "    return lambda environ, start_response: []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    node = app_node("peek:make")
    loader.load(node)
    import peek
    assert peek.seen == [node]
    assert loader.current_node() is None


def test_factory_errors_name_the_source(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text(
        "class ConfigMistake(Exception):\n"
        "    wsgate_config_error = True\n"
        "def strict(global_conf):\n"
        "    return None\n"
        "def mistaken(global_conf, **local_conf):\n"
        "    raise ConfigMistake('t.ini:4 [app:main] SECRET_KEY: missing')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(loader.LoadError) as info:
        loader.load(app_node("bad:strict", local={"unexpected": "1"}, source="t.ini:2 [app:x]"))
    assert str(info.value).startswith("t.ini:2 [app:x]: app factory bad:strict raised TypeError: ")
    with pytest.raises(Exception) as info:
        loader.load(app_node("bad:mistaken"))
    assert type(info.value).__name__ == "ConfigMistake"
    assert str(info.value) == "t.ini:4 [app:main] SECRET_KEY: missing"
    with pytest.raises(loader.LoadError) as info:
        loader.load(app_node("bad:nothing"))
    assert "importing bad:nothing failed: AttributeError" in str(info.value)


def test_go_components_are_not_loaded_in_python():
    with pytest.raises(loader.LoadError) as info:
        loader.load(app_node("go:static"))
    assert "served by wsgate's Go side" in str(info.value)
