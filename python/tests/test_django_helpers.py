"""The helpers as django-wsgi documents them: call_wsgi_app/make_wsgi_view
(SCRIPT_NAME, PATH_INFO, REMOTE_USER, status, headers, cookies, filtering,
streaming), RoutingArgsMiddleware, request.webob and CONTENT_LENGTH: -1
bodies. Real Django, real WSGI calls (WebTest and direct calls)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "django_fixtures"))
import djharness  # noqa: E402

NATIVE = "wsgate.django.factory:make_wsgi_app"
GLOBAL = {"django_settings_module": "startproject_settings", "debug": "false"}
LOCAL = {
    "WSGI_APPLICATION": "null",
    "ALLOWED_HOSTS": '["*"]',
    "extend MIDDLEWARE": '["wsgate.django.RoutingArgsMiddleware"]',
}

REQUESTS = r'''
from webtest import TestApp
import site_urls
web = TestApp(app, extra_environ={"SCRIPT_NAME": "/prefix"})

r = web.get("/prefix/embed/a/b?x=1")
emit("embed", {"status": r.status, "json": r.json, "type": r.headers.get("Content-Type"),
               "x": r.headers.get("X-Embedded"), "cookies": r.headers.getall("Set-Cookie")})
emit("named", web.get("/prefix/named/x/y").json)
emit("unicode", web.get("/prefix/embed/caf%C3%A9").json["PATH_INFO"])
emit("post", web.post("/prefix/embed/up", b"payload bytes", content_type="application/octet-stream").json["body"])
r = web.get("/prefix/filtered/p")
emit("filtered", {"x": r.headers.get("X-Filtered"), "text": r.text})
emit("lazy", web.get("/prefix/lazy/z").text)
emit("write", web.get("/prefix/write/z").text)
emit("routing", web.get("/prefix/routing/hello-world/3/").json)
r = web.post("/prefix/webob/", b"abc", headers={"User-Agent": "TestAgent/1"}, content_type="text/plain")
emit("webob", r.json)

r = web.get("/prefix/headers/h")
emit("headers", {"link": r.headers.getall("Link"), "connection": r.headers.get("Connection"),
                 "type": r.headers.get("Content-Type")})
emit("form_replayed", web.post("/prefix/post-then-embed/f", {"a": "1", "b": "two"}).json["body"])

emit("lines", web.post("/prefix/lines/l", b"one\ntwo\nthree\nfour", content_type="text/plain").json)
emit("body_then_webob", web.post("/prefix/body-then-webob/", b"xyz", content_type="text/plain").json)

# Streaming: each chunk reaches the server before the next is produced.
from wsgiref.util import setup_testing_defaults
environ = {"PATH_INFO": "/stream/s", "REQUEST_METHOD": "GET", "HTTP_HOST": "localhost"}
setup_testing_defaults(environ)
started = []
result = app(environ, lambda status, headers, exc_info=None: started.append(status))
for chunk in result:
    site_urls.EVENTS.append("server got " + chunk.decode())
result.close()
emit("stream", site_urls.EVENTS)

# A file the embedded app wraps in wsgi.file_wrapper reaches the server's file_wrapper (sendfile in wsgate).
from wsgiref.util import FileWrapper
environ = {"PATH_INFO": "/file/f", "REQUEST_METHOD": "GET", "HTTP_HOST": "localhost",
           "wsgi.file_wrapper": FileWrapper, "test.file": site_urls.__file__}
setup_testing_defaults(environ)
got = {}
result = app(environ, lambda status, headers, exc_info=None: got.update(status=status, headers=headers))
body = b"".join(result)
result.close()
emit("file", {"wrapper": type(result).__name__, "status": got["status"], "headers": sorted(got["headers"]),
              "same_bytes": body == open(site_urls.__file__, "rb").read()})

# CONTENT_LENGTH: -1 means "read to the end".
import io
environ = {"PATH_INFO": "/body/", "REQUEST_METHOD": "POST", "HTTP_HOST": "localhost",
           "CONTENT_LENGTH": "-1", "CONTENT_TYPE": "text/plain",
           "wsgi.input": io.BytesIO(b"length unknown to the server")}
setup_testing_defaults(environ)
out = []
body = b"".join(app(environ, lambda status, headers, exc_info=None: out.append(status)))
emit("unknown_length", [out[0], body.decode()])

from django.test import RequestFactory
from django.utils.module_loading import import_string
emit("handler_by_name", type(import_string("wsgate.django.handler.application")).__name__)
from wsgate.django import call_wsgi_app, ApplicationCallError
try:
    call_wsgi_app(site_urls.echo_app, RequestFactory().get("/a/b"), "/x")
except ApplicationCallError as exc:
    emit("bad_path", str(exc))
from wsgate.django import delegate
from django.contrib.auth.models import AnonymousUser
class _User:
    is_authenticated = True
    def get_username(self):
        return "alice"
handed = RequestFactory().post("/hg/d%C3%A9mo/x%20y", b"bundle", content_type="application/mercurial-0.1", SCRIPT_NAME="/site")
handed.user = _User()
response = delegate("hgweb", handed, "/d\u00e9mo/x y")
emit("delegate", {k: v for k, v in response.items() if k.startswith("X-Wsgate-")})
emit("delegate_body_unread", handed._read_started)
anonymous = RequestFactory().get("/hg/demo")
anonymous.user = AnonymousUser()
emit("delegate_anonymous", sorted(k for k, _ in delegate("hgweb", anonymous, "/demo").items() if k.startswith("X-Wsgate-")))
from django.core.files.uploadedfile import SimpleUploadedFile
upload = RequestFactory().post("/up/x", {"f": SimpleUploadedFile("f.txt", b"file body")})
upload.POST.get("f")
try:
    call_wsgi_app(site_urls.echo_app, upload, "/x")
except ApplicationCallError as exc:
    emit("multipart_consumed", str(exc))
'''


@pytest.fixture(scope="module")
def served():
    result = djharness.run(REQUESTS, factory=NATIVE, global_conf=GLOBAL, local_conf=LOCAL)
    assert result["ok"], result.get("traceback")
    assert "embed" in result, result
    return result


def test_consumed_path_moves_to_script_name(served):
    seen = served["embed"]["json"]
    assert seen["SCRIPT_NAME"] == "/prefix/embed"
    assert seen["PATH_INFO"] == "/a/b"
    assert seen["QUERY_STRING"] == "x=1"
    assert served["named"]["SCRIPT_NAME"] == "/prefix/named/" and served["named"]["PATH_INFO"] == "x/y"


def test_paths_are_wsgi_strings(served):
    assert served["unicode"] == "/caf\u00e9".encode("utf-8").decode("latin-1")


def test_status_headers_and_cookies_come_back(served):
    embed = served["embed"]
    assert embed["status"] == "203 Seen It"
    assert embed["type"] == "application/json" and embed["x"] == "yes"
    cookies = sorted(c.strip() for c in embed["cookies"])  # Django writes " name=value"
    assert cookies[0].startswith("first=1;") and "HttpOnly" in cookies[0] and "Path=/inner" in cookies[0]
    assert cookies[1].startswith("second=2;") and "Max-Age=60" in cookies[1]


def test_outer_routing_args_and_webob_keys_are_not_passed_on(served):
    assert served["embed"]["json"]["routing_args"] is False
    assert served["embed"]["json"]["webob_keys"] == []


def test_request_body_reaches_the_embedded_app(served):
    assert served["post"] == "payload bytes"


def test_views_can_filter_the_response(served):
    assert served["filtered"]["x"] == "by-django"
    assert "PATH_INFO_FILTERED" in served["filtered"]["text"]


def test_lazy_start_response_and_write_callable(served):
    assert served["lazy"] == "late headers"
    assert served["write"] == "written returned"


def test_streaming_is_preserved_and_the_iterable_closed(served):
    assert served["stream"] == [
        "produced 1", "server got chunk1;",
        "produced 2", "server got chunk2;",
        "produced 3", "server got chunk3;",
        "generator finished", "closed",
    ]


def test_routing_args_middleware(served):
    assert served["routing"] == {"args": [], "kwargs": {"slug": "hello-world", "number": 3},
                                 "urlvars": {"slug": "hello-world", "number": 3}}


def test_request_webob_and_django_share_the_body(served):
    assert served["webob"] == {"user_agent": "TestAgent/1", "webob_body": "abc", "django_body": "abc",
                               "urlvars": {}}


def test_files_from_wsgi_file_wrapper_reach_the_servers_file_wrapper(served):
    size = os.path.getsize(os.path.join(djharness.PROJ, "site_urls.py"))
    headers = [h for h in served["file"]["headers"] if h[0] in ("Content-Type", "Content-Length", "Content-Disposition")]
    assert served["file"]["wrapper"] == "FileWrapper" and served["file"]["same_bytes"]
    assert headers == [["Content-Length", str(size)], ["Content-Type", "text/x-test"]]


def test_request_webob_after_django_read_the_body(served):
    assert served["body_then_webob"] == {"django_body": "xyz", "webob_body": "xyz"}


def test_embedded_app_reads_its_body_line_by_line(served):
    assert served["lines"] == ["one\n", "two\n", ["three\n", "four"]]


def test_content_length_minus_one_is_read_to_the_end(served):
    assert served["unknown_length"] == ["200 OK", '{"django_body": "length unknown to the server", "class": "WSGIRequest"}']


def test_repeated_headers_joined_hop_by_hop_dropped_no_invented_content_type(served):
    assert served["headers"] == {"link": ["</a>; rel=a, </b>; rel=b"], "connection": None, "type": None}


def test_body_django_already_read_is_replayed(served):
    assert served["form_replayed"] == "a=1&b=two"


def test_body_consumed_by_the_upload_parser_is_an_error_not_an_empty_body(served):
    assert "already consumed by Django" in served["multipart_consumed"]


def test_wsgate_handler_can_be_named_in_wsgi_application(served):
    assert served["handler_by_name"] == "DjangoApplication"


def test_path_info_must_end_the_request_path(served):
    assert "'/x' is not the last portion" in served["bad_path"]


LOGIN = r'''
from django.core.management import call_command
call_command("migrate", verbosity=0)
from webtest import TestApp
web = TestApp(app)
emit("anonymous", web.get("/embed/x").json["REMOTE_USER"])
web.get("/login-as/alice/")
emit("alice", web.get("/embed/x").json["REMOTE_USER"])
emit("request_class", web.post("/body/", b"x", content_type="text/plain").json["class"])
'''


@pytest.mark.parametrize("wsgi_application", ["null", '"site_wsgi.application"'])
def test_django_user_is_remote_user(wsgi_application):
    """With wsgate's request class and with plain Django requests (the
    project's own wsgi.py) alike."""
    local = dict(LOCAL, WSGI_APPLICATION=wsgi_application)
    result = djharness.run(LOGIN, factory=NATIVE, global_conf=GLOBAL, local_conf=local)
    assert result["ok"], result.get("traceback")
    assert result["anonymous"] is None
    assert result["alice"] == "alice"


def test_delegate_names_the_target_path_and_user(served):
    assert served["delegate"] == {
        "X-Wsgate-Delegate": "hgweb",
        "X-Wsgate-Script-Name": "/site/hg",
        "X-Wsgate-Path-Info": "/d%C3%A9mo/x%20y",
        "X-Wsgate-Remote-User": "alice",
    }
    assert served["delegate_body_unread"] is False
    assert served["delegate_anonymous"] == ["X-Wsgate-Delegate", "X-Wsgate-Path-Info", "X-Wsgate-Script-Name"]
