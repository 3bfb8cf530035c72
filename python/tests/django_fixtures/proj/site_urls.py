# URLs of the test project: views that report what Django and embedded WSGI
# applications saw.
import json

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import HttpResponse, JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from wsgate.django import call_wsgi_app, make_wsgi_view

EVENTS = []


def echo_app(environ, start_response):
    """Reports what an embedded application receives."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    seen = {
        "SCRIPT_NAME": environ.get("SCRIPT_NAME"),
        "PATH_INFO": environ.get("PATH_INFO"),
        "REMOTE_USER": environ.get("REMOTE_USER"),
        "QUERY_STRING": environ.get("QUERY_STRING"),
        "body": body.decode("latin-1"),
        "routing_args": "wsgiorg.routing_args" in environ,
        "webob_keys": sorted(k for k in environ if k.startswith("webob.")),
    }
    start_response("203 Seen It", [
        ("Content-Type", "application/json"),
        ("X-Embedded", "yes"),
        ("Set-Cookie", "first=1; Path=/inner; HttpOnly"),
        ("Set-Cookie", "second=2; Max-Age=60"),
    ])
    return [json.dumps(seen).encode()]


def streaming_app(environ, start_response):
    def body():
        try:
            for n in (1, 2, 3):
                EVENTS.append("produced %d" % n)
                yield b"chunk%d;" % n
        finally:
            EVENTS.append("generator finished")

    class Closing:
        def __iter__(self):
            return body()

        def close(self):
            EVENTS.append("closed")

    start_response("200 OK", [("Content-Type", "text/plain")])
    return Closing()


def lazy_start_app(environ, start_response):
    def body():
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"late "
        yield b"headers"

    return body()


def write_app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


def lines_app(environ, start_response):
    """Reads its body the ways PEP 3333 allows: readline, iteration, readlines."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    second = next(iter(stream))
    rest = stream.readlines()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([first.decode(), second.decode(), [r.decode() for r in rest]]).encode()]


def body_then_webob(request):
    django_body = request.body
    return JsonResponse({"django_body": django_body.decode(), "webob_body": request.webob.body.decode()})


def file_app(environ, start_response):
    """Serves a file through the server's wsgi.file_wrapper, as Trac's chrome does."""
    path = environ["test.file"]
    import os
    start_response("200 OK", [("Content-Type", "text/x-test"), ("Content-Length", str(os.path.getsize(path)))])
    return environ["wsgi.file_wrapper"](open(path, "rb"), 4096)


def headers_app(environ, start_response):
    start_response("200 OK", [("Link", "</a>; rel=a"), ("Link", "</b>; rel=b"), ("Connection", "close")])
    return [b""]


def post_then_embed(request, path_info):
    """Reads the form first (as a view or CSRF middleware may), then embeds."""
    request.POST.get("anything")
    return call_wsgi_app(echo_app, request, path_info)


def settings_view(request):
    names = request.GET.get("names", "").split(",")
    return JsonResponse({n: repr(getattr(settings, n, "<unset>")) for n in names if n})


def webob_view(request):
    webob = request.webob
    return JsonResponse({
        "user_agent": webob.user_agent,
        "webob_body": webob.body.decode(),
        "django_body": request.body.decode(),
        "urlvars": dict(webob.urlvars),
    })


def body_view(request):
    return JsonResponse({"django_body": request.body.decode(), "class": type(request).__name__})


def filtered_view(request, path_info):
    response = call_wsgi_app(echo_app, request, path_info)
    response["X-Filtered"] = "by-django"
    response.content = response.content.replace(b"PATH_INFO", b"PATH_INFO_FILTERED")
    return response


def routing_view(request, slug, number):
    args, kwargs = request.environ["wsgiorg.routing_args"]
    return JsonResponse({"args": list(args), "kwargs": kwargs, "urlvars": dict(request.webob.urlvars)})


def login_view(request, username):
    user, _ = get_user_model().objects.get_or_create(username=username)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("logged in as %s" % username)


urlpatterns = [
    path("settings/", settings_view),
    path("webob/", csrf_exempt(webob_view)),
    path("body/", csrf_exempt(body_view)),
    re_path(r"^embed(/.*)$", csrf_exempt(make_wsgi_view(echo_app))),
    re_path(r"^named/(?P<path_info>.*)$", csrf_exempt(make_wsgi_view(echo_app))),
    re_path(r"^filtered(/.*)$", filtered_view),
    re_path(r"^stream(/.*)$", make_wsgi_view(streaming_app)),
    re_path(r"^lazy(/.*)$", make_wsgi_view(lazy_start_app)),
    re_path(r"^write(/.*)$", make_wsgi_view(write_app)),
    re_path(r"^headers(/.*)$", make_wsgi_view(headers_app)),
    re_path(r"^file(/.*)$", make_wsgi_view(file_app)),
    re_path(r"^lines(/.*)$", csrf_exempt(make_wsgi_view(lines_app))),
    path("body-then-webob/", csrf_exempt(body_then_webob)),
    re_path(r"^post-then-embed(/.*)$", csrf_exempt(post_then_embed)),
    path("routing/<slug:slug>/<int:number>/", routing_view),
    path("login-as/<str:username>/", login_view),
]
