"""A Django WSGI application whose requests carry ``request.webob``.

``DjangoApplication`` is Django's WSGIHandler with a request class that

* reads a body announced as ``CONTENT_LENGTH: -1`` (length unknown, as some
  WSGI middleware leaves it) to the end of ``wsgi.input``, where Django alone
  would see an empty body;
* offers ``request.webob``, a ``webob.Request`` over the same environ (edits
  through it change the environ Django sees), when WebOb is installed. Both
  Django and WebOb can read the body: the first ``request.webob`` access
  makes it re-readable.

Name it in the settings (``WSGI_APPLICATION = "wsgate.django.handler.application"``)
or leave WSGI_APPLICATION unset: wsgate's native and twod.wsgi factories
serve it by default.
"""

import tempfile
from io import BytesIO
from typing import TYPE_CHECKING

from django.core.handlers.wsgi import LimitedStream, WSGIHandler
from django.core.handlers.wsgi import WSGIRequest as DjangoWSGIRequest

if TYPE_CHECKING:
    import webob as _webob  # the property below is called webob too

_SPOOL = 1024 * 1024


def read_unknown_length(environ):
    """If CONTENT_LENGTH is -1, read wsgi.input to its end into a seekable
    file and put the real length in CONTENT_LENGTH."""
    if str(environ.get("CONTENT_LENGTH", "")).strip() != "-1":
        return
    source = environ["wsgi.input"]
    copy = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    while True:
        chunk = source.read(65536)
        if not chunk:
            break
        copy.write(chunk)
    environ["CONTENT_LENGTH"] = str(copy.tell())
    copy.seek(0)
    environ["wsgi.input"] = copy


class _OwnPosition:
    """A reader over a shared seekable file that keeps its own position, so
    Django's stream and WebOb's body_file do not move each other."""

    def __init__(self, file):
        self._file = file
        self._pos = 0

    def read(self, size=-1):
        self._file.seek(self._pos)
        data = self._file.read(size) if size is not None and size >= 0 else self._file.read()
        self._pos += len(data)
        return data

    def readline(self, size=-1):
        self._file.seek(self._pos)
        line = self._file.readline(size) if size is not None and size >= 0 else self._file.readline()
        self._pos += len(line)
        return line


class WSGIRequest(DjangoWSGIRequest):
    """Django's WSGI request plus ``webob`` and ``CONTENT_LENGTH: -1`` bodies."""

    def __init__(self, environ):
        read_unknown_length(environ)
        super().__init__(environ)

    @property
    def webob(self) -> "_webob.Request":
        """``webob.Request`` for this request's environ (needs WebOb)."""
        cached = self.__dict__.get("_webob")
        if cached is not None:
            return cached
        try:
            import webob
        except ImportError:
            raise AttributeError("request.webob needs WebOb: pip install WebOb") from None
        self._make_body_shareable()
        cached = self.__dict__["_webob"] = webob.Request(self.environ)
        return cached

    def _make_body_shareable(self):
        environ = self.environ
        if "_body" in self.__dict__:
            environ["wsgi.input"] = BytesIO(self._body)
            environ["CONTENT_LENGTH"] = str(len(self._body))
            environ["webob.is_body_seekable"] = True
            return
        if getattr(self, "_read_started", False):
            return  # Django's upload parser consumed it: nothing left to share
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        copy = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
        remaining = length
        while remaining > 0:
            chunk = self._stream.read(min(remaining, 65536))
            if not chunk:
                break
            copy.write(chunk)
            remaining -= len(chunk)
        length = copy.tell()
        copy.seek(0)
        environ["wsgi.input"] = copy
        environ["CONTENT_LENGTH"] = str(length)
        environ["webob.is_body_seekable"] = True
        self._stream = LimitedStream(_OwnPosition(copy), length)


# django-wsgi's name for the request class.
DjangoWSGIRequest = WSGIRequest


class DjangoApplication(WSGIHandler):
    """Django's WSGI application, with wsgate's request class."""

    request_class = WSGIRequest


_application = None


def __getattr__(name):
    # Built on first use: Django's handler needs the settings loaded.
    global _application
    if name in ("application", "APPLICATION"):
        if _application is None:
            _application = DjangoApplication()
        return _application
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
