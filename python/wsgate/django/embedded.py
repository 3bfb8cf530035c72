"""Calling other WSGI applications (Trac, hgweb, Flask…) from Django views.

``call_wsgi_app(wsgi_app, request, path_info)`` runs ``wsgi_app`` for the
current Django request and returns its answer as a Django response:

* the part of the path the view consumed moves from PATH_INFO to SCRIPT_NAME
  (``path_info`` must be the end of the request's path), so the embedded
  application builds its links under the view's URL;
* a user logged in to Django is REMOTE_USER inside the embedded application;
* ``wsgiorg.routing_args`` and WebOb's cached ``webob.*`` keys of the outer
  request are not passed on;
* the status (with its reason), headers and cookies come back as they were
  sent; a body the application produced as a list is an ordinary
  HttpResponse (views and middleware may filter it), a file the application
  wrapped in ``wsgi.file_wrapper`` a FileResponse (the server sends it with
  sendfile), any other iterable a StreamingHttpResponse that streams as the
  application yields and closes it afterwards.

``make_wsgi_view(wsgi_app)`` is the same as a view for URLconfs: the path
left for the application is the view's ``path_info`` argument (the last
group the pattern captures, or the one named ``path_info``).

``delegate(target, request, path_info)`` is call_wsgi_app without running
the application in Django's worker: it returns the response with which a
view hands the request to ``target``, an application of the site that
wsgate's ``egg:wsgate#delegate`` composite lists (docs/components.md), with
the SCRIPT_NAME, PATH_INFO and REMOTE_USER call_wsgi_app would give it. The
Go master sends the request there, body included (the view must not read
it), and the Django worker is free at once.
"""

from http.cookies import CookieError, SimpleCookie
from io import BytesIO
from typing import Any, Callable, Dict, Iterable, List
from urllib.parse import quote

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from .errors import ApplicationCallError

__all__ = ["call_wsgi_app", "make_wsgi_view", "WSGIApplication"]

# PEP 3333's application: environ, start_response -> an iterable of bytes.
WSGIApplication = Callable[[Dict[str, Any], Callable[..., Callable[[bytes], Any]]], Iterable[bytes]]

_HOP_BY_HOP = frozenset(
    "connection keep-alive proxy-authenticate proxy-authorization te trailer trailers transfer-encoding upgrade".split()
)


def _wsgi_str(text):
    """A text path as a WSGI "bytes in latin-1" native string."""
    return text.encode("utf-8").decode("latin-1")


class _Input:
    """PEP 3333's wsgi.input over Django's length-limited request stream
    (Django 4.2's lacks readlines and iteration)."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, size=-1):
        return self._stream.read(size if size is not None else -1)

    def readline(self, size=-1):
        return self._stream.readline(size if size is not None else -1)

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def _request_body(request, environ):
    """Give the embedded application the request body, wherever it is now."""
    if "_body" in request.__dict__:  # Django read it whole (request.body, form POST)
        environ["wsgi.input"] = BytesIO(request._body)
        environ["CONTENT_LENGTH"] = str(len(request._body))
        return
    if getattr(request, "_read_started", False):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            raise ApplicationCallError(
                "the request body was already consumed by Django (request.POST/FILES of a multipart "
                "form, or request.read()) before the embedded application was called; exempt the view "
                "from CSRF checks (csrf_exempt) or read request.body first"
            )
        return
    # Untouched: stream it through Django's length-limited reader.
    environ["wsgi.input"] = _Input(request._stream)
    request._read_started = True


def _split(request, path_info):
    """SCRIPT_NAME and PATH_INFO (WSGI strings) for an application left
    path_info of the request, and its REMOTE_USER (None for anonymous)."""
    full = request.path_info
    if not full.endswith(path_info):
        raise ApplicationCallError(
            "path %r is not the last portion of the request's PATH_INFO (%r)" % (path_info, full)
        )
    consumed = full[: len(full) - len(path_info)]
    user = getattr(request, "user", None)
    remote_user = user.get_username() if user is not None and user.is_authenticated else None
    return request.environ.get("SCRIPT_NAME", "") + _wsgi_str(consumed), _wsgi_str(path_info), remote_user


def _environ_for(request, path_info):
    script_name, path_info, remote_user = _split(request, path_info)
    environ = {k: v for k, v in request.environ.items() if not k.startswith("webob.")}
    environ.pop("wsgiorg.routing_args", None)
    environ["SCRIPT_NAME"], environ["PATH_INFO"] = script_name, path_info
    if remote_user is not None:
        environ["REMOTE_USER"] = remote_user
    _request_body(request, environ)
    return environ


def delegate(target, request, path_info):
    """The response that hands ``request`` to the application ``target`` of
    wsgate's delegate composite, left ``path_info``, as the Django user of the
    request (``request.user``; none when anonymous)."""
    script_name, path_info, remote_user = _split(request, path_info)
    response = HttpResponse()
    response["X-Wsgate-Delegate"] = target
    # Percent-encoded bytes of the WSGI strings: any path survives a header.
    response["X-Wsgate-Script-Name"] = quote(script_name.encode("latin-1"), safe="/")
    response["X-Wsgate-Path-Info"] = quote(path_info.encode("latin-1"), safe="/")
    if remote_user is not None:
        response["X-Wsgate-Remote-User"] = remote_user
    return response


class _Body:
    """The embedded application's body for StreamingHttpResponse: what it
    passed to write(), then its iterable; close() closes the iterable."""

    def __init__(self, written, first, iterator, result):
        self._written = written
        self._first = first
        self._iterator = iterator
        self._result = result

    def __iter__(self):
        for chunk in self._written:
            yield chunk
        for chunk in self._first:
            yield chunk
        for chunk in self._iterator:
            yield chunk

    def close(self):
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


def _django_response(status, headers, body, kind):
    code_text, _, reason = status.partition(" ")
    try:
        code = int(code_text)
    except ValueError:
        raise ApplicationCallError("the embedded application returned an invalid status %r" % status) from None
    if kind == "file":
        # Django hands FileResponse's file to the server's wsgi.file_wrapper:
        # wsgate sends it with sendfile, as if the application were not embedded.
        response = FileResponse(body.filelike, status=code, reason=reason or None)
        response.block_size = getattr(body, "blksize", response.block_size)
    elif kind == "stream":
        response = StreamingHttpResponse(body, status=code, reason=reason or None)
    else:
        response = HttpResponse(body, status=code, reason=reason or None)
    for name in list(response.headers):  # only what the application sent
        del response[name]
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            jar = SimpleCookie()
            try:
                jar.load(value)
            except CookieError:
                continue
            for key, morsel in jar.items():
                response.cookies[key] = morsel
        elif lower in _HOP_BY_HOP:
            continue
        elif name in response:
            response[name] = "%s, %s" % (response[name], value)
        else:
            response[name] = value
    return response


def call_wsgi_app(wsgi_app: WSGIApplication, request: HttpRequest, path_info: str) -> HttpResponseBase:
    """Call ``wsgi_app`` for ``request`` with ``path_info`` left to it; return
    its response as a Django response."""
    environ = _environ_for(request, path_info)
    captured: Dict[str, Any] = {}
    written: List[bytes] = []

    def start_response(status, headers, exc_info=None):
        if exc_info is not None and captured.get("started"):
            raise exc_info[1].with_traceback(exc_info[2])
        captured["status"], captured["headers"] = status, list(headers)
        return written.append

    result = wsgi_app(environ, start_response)
    try:
        if isinstance(result, (list, tuple)):
            if "status" not in captured:
                raise ApplicationCallError("the embedded application did not call start_response")
            captured["started"] = True
            return _django_response(captured["status"], captured["headers"], b"".join(written + list(result)), "bytes")
        file_wrapper = environ.get("wsgi.file_wrapper")
        if (isinstance(file_wrapper, type) and isinstance(result, file_wrapper) and hasattr(result, "filelike")
                and "status" in captured and not written):
            captured["started"] = True
            return _django_response(captured["status"], captured["headers"], result, "file")
        iterator = iter(result)
        first = []
        if "status" not in captured:  # start_response may wait for the first chunk
            for chunk in iterator:
                first.append(chunk)
                break
            if "status" not in captured:
                raise ApplicationCallError("the embedded application did not call start_response")
        captured["started"] = True
    except BaseException:
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise
    body = _Body(written, first, iterator, result)
    return _django_response(captured["status"], captured["headers"], body, "stream")


def make_wsgi_view(wsgi_app: WSGIApplication) -> Callable[..., HttpResponseBase]:
    """A Django view that serves ``wsgi_app``; the URL pattern captures the
    path left to the application as ``path_info``."""

    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if "path_info" in kwargs:
            path_info = kwargs["path_info"]
        elif args:
            path_info = args[-1]
        else:
            raise ApplicationCallError(
                "the URL pattern of a make_wsgi_view view must capture the path left to the application "
                "(as its last group, or as path_info)")
        return call_wsgi_app(wsgi_app, request, path_info)

    view.wsgi_app = wsgi_app  # type: ignore[attr-defined]
    return view
