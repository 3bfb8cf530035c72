"""The wsgate worker: loads the WSGI application once, then serves requests
framed by the master (docs/protocol.md) in a tight loop.

    python -m wsgate.worker --fds 3:4[,5:6,…] --workers N

The master passes each thread a pair of connected sockets (fds 3:4, 5:6…:
the stream socket, then the dispatch socket its REQUESTs arrive on) and the
node tree (JSON, worker form) on stdin. Each thread owns its sockets, so a
thread never waits for another and the master never has to demultiplex.
Standard library only; CPython 3.9+.

Per request the loop builds only what is the request's own: the environ
(one marshal.loads of the master's dict, plus the constant wsgi.* entries
built once per thread), wsgi.input, wsgi.errors and the start_response state.
"""

import argparse
import faulthandler
import gc
import importlib
import json
import marshal
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
import traceback

from wsgate import protocol as P

if __name__ == "__main__":
    # Run as `python -m wsgate.worker`: modules that import wsgate.worker
    # (wsgate.lend) must share this copy's state (_serving, sys.stderr's router).
    sys.modules.setdefault("wsgate.worker", sys.modules[__name__])

_HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade",
))

_monotonic = time.monotonic
_CREDIT_WINDOW = 1024 * 1024  # body bytes asked for at a time
_LOAN_READ = 64 * 1024  # body bytes readline and read() take from a lent socket at a time
_LOAN_MIN_READ = 8 * 1024  # the least read from a lent socket (read(7) must not cost a recv each)
_DONTWAIT = socket.MSG_DONTWAIT
_HEADER_pack = P.HEADER.pack
_U32_pack = P.U32.pack
_loads = marshal.loads
_END = P.END
_DATA = P.DATA
_START = P.START


class ClientDisconnected(OSError):
    """wsgi.input: the client's request body broke off before its end."""


class ClientGone(OSError):
    """The client closed its connection while the response was streaming:
    raised from write() so the iteration stops and close() is called."""


# RFC 9110 token, and the characters no header may carry (PEP 3333 and
# wsgiref.validate: control characters other than HTAB).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0a-\x1f\x7f]").search
_CANCEL = bytes((P.CTL_CANCEL,))


class AppLoadError(Exception):
    """The application named by the node could not be loaded."""


# ---------------------------------------------------------------- the app

def load_callable(spec):
    """The object `module:qualname` names (gunicorn's --app form)."""
    module_name, sep, qualname = spec.partition(":")
    if not sep:
        qualname = "application"
    if not module_name or not qualname:
        raise AppLoadError("%r is not of the form module:callable" % spec)
    module = importlib.import_module(module_name)
    obj = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError("module %s has no attribute %r" % (module_name, qualname)) from None
    if not callable(obj):
        raise AppLoadError("%s is a %s, not a WSGI callable" % (spec, type(obj).__name__))
    return obj


def load_app(node):
    from wsgate import loader  # the configuration engine's node loader

    loader.setup_logging()  # the INI's logging sections first, as pserve (a no-op when none)
    if node.get("protocol") == "wsgate.callable":
        return load_callable(node["factory"])
    return loader.load(node)


def describe_load_error(exc):
    """One line naming the error and where it happened."""
    if isinstance(exc, AppLoadError) or getattr(type(exc), "wsgate_config_error", False):
        return str(exc)  # already names the place: file:line [section] option
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb and not isinstance(exc, SyntaxError):
        last = tb[-1]
        where = " (at %s:%s)" % (last.filename, last.lineno)
    return "%s: %s%s" % (type(exc).__name__, exc, where)


# ---------------------------------------------------------------- PEP 3333 objects

class FileWrapper:
    """wsgi.file_wrapper: a real file given to it is sent by the master with
    sendfile; anything else is iterated in blocks."""

    __slots__ = ("filelike", "blksize", "close")

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self):
        read = self.filelike.read
        blksize = self.blksize
        while True:
            data = read(blksize)
            if not data:
                return
            yield data


class Input:
    """wsgi.input: the request body, pulled from the master with a credit
    window so a body of any size goes through in bounded memory. Once the
    application reads, the next window is asked for as soon as one arrives,
    so the master reads the client while the application works: at most two
    windows are in memory.

    BODY payloads are received into the channel's own buffer (kept from one
    request to the next), and each read returns bytes copied out of it: one
    copy in the worker, no fresh buffer per frame.

    With the REQUEST's BODY_LOAN flag, the master may answer a CREDIT by
    lending the client's socket (docs/protocol.md): the body is then read
    from it without blocking, as the application asks, and handed back
    (BODY_READ) as soon as a read would block, so the master, not this
    worker's socket, waits for a slow client. No CREDIT is asked ahead then:
    every answer is read at once, with the descriptor it may carry."""

    __slots__ = ("_chan", "_stream", "_buf", "_pos", "_end", "_eof", "_inline", "_asked", "_loan_ok",
                 "_client", "_loan", "_took")

    def __init__(self, chan, stream, flags):
        self._chan = chan
        self._stream = stream
        self._buf = chan.inbuf
        self._pos = 0  # bytes of _buf already given to the application
        self._end = 0  # end of the body bytes in _buf (what follows is stale)
        self._eof = not (flags & P.FLAG_HAS_BODY)
        self._inline = bool(flags & P.FLAG_BODY_INLINE)
        self._asked = False  # a CREDIT is out, its answer not read yet
        self._loan_ok = bool(flags & P.FLAG_BODY_LOAN)
        self._client = None  # the client's socket while the master lends it
        self._loan = 0  # body bytes the loan allows
        self._took = 0  # of them, read

    def _more(self, want=_LOAN_READ):
        """At least one more body byte after _end, or _eof (want: how many
        the application waits for, a hint for reads from a lent socket)."""
        chan = self._chan
        buf = self._buf
        pos, end = self._pos, self._end
        if pos:
            # the unread rest (less than the application asked for) to the front
            with memoryview(buf) as view:
                view[:end - pos] = view[pos:end]
            self._pos, self._end = 0, end - pos
            end -= pos
        out = b""
        while True:
            if self._client is not None:
                if self._from_client(want):
                    return
                out = self._give_back()
            if not self._inline and not self._asked:
                out += _HEADER_pack(4, P.CREDIT, self._stream) + _U32_pack(_CREDIT_WINDOW)
            if out:
                chan.send(out)
                out = b""
            self._asked = False
            ftype, n, fds = self._answer(end)
            if ftype == P.BODY_LOAN and len(fds) == 1 and n == 8:
                self._client = socket.socket(fileno=fds[0])
                (self._loan,) = _U64_unpack_from(buf, end)
                self._took = 0
                continue
            for fd in fds:
                os.close(fd)  # not asked for
            break
        if ftype == P.BODY:
            self._end = end + n
            if not self._inline and not self._loan_ok:
                chan.send(_HEADER_pack(4, P.CREDIT, self._stream) + _U32_pack(_CREDIT_WINDOW))
                self._asked = True
        elif ftype == P.BODY_END:
            self._eof = True
        elif ftype == P.BODY_FAIL:
            self._eof = True
            self._inline = True  # nothing more will come
            raise ClientDisconnected(bytes(buf[end:end + n]).decode("utf-8", "replace"))
        else:
            raise P.ProtocolError("expected BODY, got %s" % P.NAMES.get(ftype, ftype))

    def _answer(self, at):
        """The master's answer to a CREDIT, its payload into _buf at `at`:
        (type, length, descriptors that came along)."""
        chan = self._chan
        fds = []
        while True:
            if self._loan_ok:
                (ftype, n), more = chan.read_for_fds(self._stream, self._buf, at)
                fds += more
            else:
                ftype, n = chan.read_for_into(self._stream, self._buf, at)
            if ftype != P.CONTROL_TO_WORKER:
                return ftype, n, fds
            # a cancel of the response while the app reads its body: the
            # response then runs to its end, drained by the master

    def _from_client(self, want):
        """Up to max(want, 8 KiB) body bytes from the lent socket into
        _buf, without blocking: False if none came (the read would block,
        the client's end, an error: the master's path reads on). No more
        than the application waits for, when that is much: the buffer is
        then empty after the read that takes them, and the next read(size)
        receives straight into its bytes."""
        n = min(max(want, _LOAN_MIN_READ), self._loan - self._took)
        end = self._end
        buf = self._buf
        if len(buf) < end + n:
            buf += bytes(end + n - len(buf))
        with memoryview(buf) as view:
            try:
                k = self._client.recv_into(view[end:end + n], n, _DONTWAIT)
            except OSError:  # BlockingIOError among them
                return False
        if not k:
            return False
        self._end = end + k
        self._took += k
        if self._took == self._loan:
            self._chan.send(self._give_back())
            self._eof = True  # the loan was the rest of the body
        return True

    def _give_back(self):
        """End the loan: close this process's descriptor of the client's
        socket; the BODY_READ frame to send."""
        client, self._client = self._client, None
        client.close()
        return _HEADER_pack(8, P.BODY_READ, self._stream) + _U64_pack(self._took)

    def read(self, size=-1):
        if size is None or size < 0:
            while not self._eof:
                self._more()
            size = self._end - self._pos
        elif self._client is not None and self._pos == self._end and 0 < size <= self._loan - self._took:
            # from the lent socket into the bytes returned: no copy in between
            try:
                data = self._client.recv(size, _DONTWAIT)
            except OSError:  # would block, or failed: _more hands the loan back
                data = b""
            if data:
                self._took += len(data)
                if self._took == self._loan:
                    self._chan.send(self._give_back())
                    self._eof = True
                if len(data) == size:
                    return data
                self._buf[:len(data)] = data
                self._pos, self._end = 0, len(data)
        while self._end - self._pos < size and not self._eof:
            self._more(size - (self._end - self._pos))
        return self._take(size)

    def _take(self, n):
        """The next n buffered bytes (fewer at the end), as bytes."""
        pos = self._pos
        end = min(pos + n, self._end)
        with memoryview(self._buf) as view:
            data = bytes(view[pos:end])
        self._pos = end
        return data

    def readline(self, size=-1):
        limit = size if size is not None and size >= 0 else None
        searched = self._pos  # no newline before this offset of _buf
        while True:
            pos = self._pos
            nl = self._buf.find(b"\n", max(searched, pos), self._end)
            if nl >= 0:
                n = nl + 1 - pos
                break
            if limit is not None and limit <= self._end - pos:
                n = limit
                break
            if self._eof:
                n = self._end - pos
                break
            searched = self._end - pos  # relative to pos: _more moves the bytes to the front
            self._more()
            searched += self._pos
        if limit is not None and limit < n:
            n = limit
        return self._take(n)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def finish(self):
        """Consume the body frames already on their way: the rest of an
        inline body, or the answer to the CREDIT asked in advance."""
        if self._client is not None:
            self._chan.send(self._give_back())
        elif self._inline:
            while not self._eof:
                self._pos = self._end  # unread: dropped
                self._more()
        elif self._asked:
            self._asked = False
            ftype, _n, fds = self._answer(0)
            for fd in fds:
                os.close(fd)
            if ftype not in (P.BODY, P.BODY_END, P.BODY_FAIL):
                raise P.ProtocolError("expected BODY, got %s" % P.NAMES.get(ftype, ftype))
        self._pos = self._end = 0
        if len(self._buf) > _INPUT_KEEP:
            # a body read whole (read()) or a long line: not kept for the next request
            self._chan.inbuf = bytearray()


# wsgi.input's buffer is kept for the next request up to this size: a
# credit window and the rest of a read.
_INPUT_KEEP = 2 * _CREDIT_WINDOW


class Errors:
    """wsgi.errors: text written here becomes a log line of the master
    (sys.stderr during a request too: ftype STDERR, see StderrRouter)."""

    __slots__ = ("_chan", "_stream", "_pending", "_type")

    def __init__(self, chan, stream, ftype=P.LOG):
        self._chan = chan
        self._stream = stream
        self._pending = ""
        self._type = ftype

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors.write() takes str, not %s" % type(s).__name__)
        text = self._pending + s
        nl = text.rfind("\n")
        if nl < 0:
            self._pending = text
            return
        self._pending = text[nl + 1:]
        self._send(text[:nl])

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        if self._pending:
            text, self._pending = self._pending, ""
            self._send(text)

    def _send(self, text):
        data = text.encode("utf-8", "replace")
        self._chan.send(_HEADER_pack(len(data), self._type, self._stream) + data)


_serving = threading.local()  # .request: (chan, stream) of the thread's request; .stderr: its Errors


class StderrRouter:
    """sys.stderr in a worker: what a thread writes while it serves a request
    goes to the master on that request's stream (STDERR frames), so the log
    line names the request; anything else goes to the real stderr, a pipe
    the master logs as the worker's. Everything but write and flush is the
    real stderr's (fileno, encoding…), so C code and subprocesses given
    sys.stderr use file descriptor 2 as before."""

    def __init__(self, real):
        self._real = real

    def write(self, s):
        req = getattr(_serving, "request", None)
        if req is None:
            return self._real.write(s)
        err = getattr(_serving, "stderr", None)
        if err is None:
            err = _serving.stderr = Errors(req[0], req[1], P.STDERR)
        err.write(s if isinstance(s, str) else str(s))
        return len(s)

    def writelines(self, lines):
        for s in lines:
            self.write(s)

    def flush(self):
        err = getattr(_serving, "stderr", None)
        if err is not None:
            err.flush()
        self._real.flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


def _request_done():
    """The thread's request ended: its stderr text goes out, the rest to the real stderr."""
    err = getattr(_serving, "stderr", None)
    if err is not None:
        _serving.stderr = None
        err.flush()
    _serving.request = None


def check_status(status, exc_info, sent, again):
    """start_response's rules for its status and exc_info (PEP 3333): sent,
    the headers went out; again, start_response was called before."""
    if exc_info is not None:
        try:
            if sent:
                raise exc_info[1].with_traceback(exc_info[2])
        finally:
            exc_info = None
    elif again:
        raise AssertionError("start_response called a second time without exc_info")
    if type(status) is not str:
        raise TypeError("status must be str, not %s" % type(status).__name__)
    if len(status) < 4 or status[3] != " " or not status[:3].isdigit():
        raise ValueError("status %r is not of the form '200 OK'" % status)
    if status[0] == "1":
        raise ValueError("status %r: a final response needs a status of 200 or more "
                         "(1xx responses are the server's business)" % status)


def regular_file(wrapper):
    """(fd, offset, count) of the regular file a wsgi.file_wrapper wraps,
    from its current position to its end; None if it wraps anything else."""
    f = wrapper.filelike
    try:
        fd = f.fileno()
        st = os.fstat(fd)
        offset = f.tell()
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or offset < 0:
        return None
    return fd, offset, max(st.st_size - offset, 0)


class Response:
    """start_response, write() and the sending of the response frames."""

    __slots__ = ("chan", "stream", "head", "is_head", "start", "code", "has_length", "sent", "next_poll",
                 "direct")

    def __init__(self, chan, stream, is_head, direct=False):
        self.chan = chan
        self.stream = stream
        self.direct = direct  # the master lets this response's body go to the client straight (DIRECT)
        self.is_head = is_head  # HEAD: no body, but the GET's Content-Length
        self.head = is_head  # no body is sent
        self.start = None  # encoded START payload
        self.sent = False
        self.next_poll = 0.0

    def start_response(self, status, headers, exc_info=None):
        check_status(status, exc_info, self.sent, self.start is not None)
        has_length = False
        for name, value in headers:
            lname = name.lower()
            if lname in _HOP_BY_HOP:
                raise ValueError("hop-by-hop header %r is not allowed from a WSGI application (PEP 3333)" % name)
            if lname == "content-length":
                has_length = True
            if type(value) is not str:
                raise TypeError("header %r: value must be str, not %s" % (name, type(value).__name__))
            if not _TOKEN(name):
                raise ValueError("header name %r is not an HTTP token (RFC 9110)" % name)
        start = P.encode_start(status, headers)
        if _CONTROL_CHARS(status) or any(_CONTROL_CHARS(v) for _, v in headers):
            raise ValueError("control character in the status or a header: %r" % ([status] + list(headers),))
        self.start = start
        code = int(status[:3])
        self.code = code
        self.has_length = has_length
        self.head = self.is_head or code < 200 or code == 204 or code == 304
        return self.write

    def _start_frame(self):
        if self.start is None:
            raise AssertionError("the application sent a body before calling start_response")
        self.sent = True
        return _HEADER_pack(len(self.start), _START, self.stream) + self.start

    def write(self, data):
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("a WSGI body block must be bytes, not %s" % type(data).__name__)
            data = bytes(data)
        if not self.sent:
            out = self._start_frame()
        elif not data or self.head:
            return
        else:
            out = b""
        if data and not self.head:
            if len(data) > _COPY_LIMIT:
                self.chan.sendv(_data_parts(out, self.stream, data, b""))
            else:
                self.chan.send(out + _HEADER_pack(len(data), _DATA, self.stream) + data)
        else:
            self.chan.send(out)
        now = _monotonic()
        if not self.next_poll:
            self.next_poll = now + 0.005  # not on the first block: most responses have one
        elif now >= self.next_poll:
            # At most every 5 ms: has the master said the client is gone?
            self.next_poll = now + 0.005
            if self.chan.poll_control(self.stream, _CANCEL):
                raise ClientGone("the client closed the connection")

    def send_list(self, blocks):
        """A list or tuple body: START, DATA and END in one write."""
        data = b"".join(blocks)
        if self.start is None:
            raise AssertionError("the application returned without calling start_response")
        if not self.has_length and (self.is_head or not self.head):
            self.start += b"\0Content-Length\0" + str(len(data)).encode()
        out = self._start_frame()
        end = _HEADER_pack(0, _END, self.stream)
        if not data or self.head:
            self.chan.send(out + end)
        elif self.direct and len(data) >= _DIRECT_MIN:
            self._send_direct(out, data, end)
        elif len(data) > _COPY_LIMIT:
            self.chan.sendv(_data_parts(out, self.stream, data, end))
        else:
            self.chan.send(out + _HEADER_pack(len(data), _DATA, self.stream) + data + end)

    def send_last(self, data):
        """The last block, with END in the same write (and Content-Length if
        it is the only block and the application gave none)."""
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("a WSGI body block must be bytes, not %s" % type(data).__name__)
            data = bytes(data)
        if self.sent:
            end = _HEADER_pack(0, _END, self.stream)
            if self.head:
                self.chan.send(end)
            elif len(data) > _COPY_LIMIT:
                self.chan.sendv(_data_parts(b"", self.stream, data, end))
            else:
                self.chan.send(_HEADER_pack(len(data), _DATA, self.stream) + data + end)
        else:
            self.send_list((data,))

    def _send_direct(self, head, data, tail):
        """Ask the master for the client's socket and write data there,
        without blocking; what would block goes to the master as DATA, so a
        slow client never holds this worker. head (START) goes first, tail
        (END) last."""
        chan = self.chan
        stream = self.stream
        chan.send(head + _HEADER_pack(8, P.DIRECT, stream) + _U64_pack(len(data)))
        (ftype, _stream, ack), fds = chan.read_for_fds(stream)
        fd = fds.pop(0) if fds else -1
        for extra in fds:
            os.close(extra)
        if ftype != P.DIRECT_ACK or len(ack) != 1 or (ack[0] == 1) != (fd >= 0):
            if fd >= 0:
                os.close(fd)
            raise P.ProtocolError("expected DIRECT_ACK with the client's socket, got %s" % P.NAMES.get(ftype, ftype))
        view = memoryview(data)
        wrote = 0
        flags = 0
        if fd >= 0:
            # The descriptor shares the master's non-blocking open file:
            # send() returns what fits now and raises BlockingIOError then.
            client = socket.socket(fileno=fd)
            try:
                while wrote < len(data):
                    wrote += client.send(view[wrote:], _NOSIGNAL)
            except BlockingIOError:
                pass
            except OSError:
                flags = P.WROTE_CLIENT_FAILED  # the client is gone: the master ends the response
            finally:
                client.close()
            out = _HEADER_pack(9, P.WROTE, stream) + _U64_pack(wrote) + bytes((flags,))
        else:
            out = b""
        if flags or wrote == len(data):
            chan.send(out + tail)
        else:
            chan.sendv(_data_parts(out, stream, view[wrote:], tail))

    def send_file(self, wrapper):
        """A wsgi.file_wrapper around a regular file: the master sends it with
        sendfile from its own descriptor. False if this file cannot go that way."""
        found = regular_file(wrapper)
        if found is None:
            return False
        fd, offset, count = found
        f = wrapper.filelike
        if self.start is None:
            raise AssertionError("the application returned without calling start_response")
        if not self.has_length and (self.is_head or not self.head):
            self.start += b"\0Content-Length\0" + str(count).encode()
        if self.head:
            self.chan.send(self._start_frame() + _HEADER_pack(0, _END, self.stream))
            return True
        payload = P.FILE_PAYLOAD.pack(fd, offset, count)
        self.chan.send(self._start_frame() + _HEADER_pack(len(payload), P.FILE, self.stream) + payload)
        ftype, _stream, ack = self.chan.read_for(self.stream)
        if ftype != P.FILE_ACK:
            raise P.ProtocolError("expected FILE_ACK, got %s" % P.NAMES.get(ftype, ftype))
        if ack[:1] != b"\x01":
            f.seek(offset)
            for block in wrapper:
                self.write(block)
        self.chan.send(_HEADER_pack(0, _END, self.stream))
        return True

    def finish(self):
        out = b"" if self.sent else self._start_frame()
        self.chan.send(out + _HEADER_pack(0, _END, self.stream))


# Blocks above this size are handed to sendmsg as they are, not copied into
# one buffer with their frame header.
_COPY_LIMIT = 64 * 1024
# A body this large is worth a DIRECT round trip to the master: writing it
# to the client straight saves two copies and the master's work. Measured
# (CPU per request, docs/architecture.md): a loss at 128 KiB, even at
# 256 KiB, a clear gain from 512 KiB.
_DIRECT_MIN = 512 * 1024
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_U64_pack = P.U64.pack
_U64_unpack_from = P.U64.unpack_from


def _data_parts(head, stream, data, tail, ftype=_DATA):
    """[head, DATA header, block, …, tail] for sendmsg, blocks ≤ 1 MiB (OUTPUT
    frames for wsgate.lend)."""
    parts = [head] if head else []
    view = memoryview(data)
    for i in range(0, len(data), P.MAX_DATA_FRAME):
        chunk = view[i:i + P.MAX_DATA_FRAME]
        parts.append(_HEADER_pack(len(chunk), ftype, stream))
        parts.append(chunk)
    if tail:
        parts.append(tail)
    return parts


# ---------------------------------------------------------------- the loop

def serve(chan, app, base_environ):
    """Serve the requests of one thread's sockets until the master closes them."""
    next_request = chan.next_request
    while True:
        try:
            stream, payload = next_request()
        except EOFError:
            return
        handle(chan, app, base_environ, stream, payload)


def handle(chan, app, base_environ, stream, payload):
    environ = _loads(memoryview(payload)[1:])
    environ.update(base_environ)
    inp = Input(chan, stream, payload[0])
    errors = Errors(chan, stream)
    environ["wsgi.input"] = inp
    environ["wsgi.errors"] = errors
    resp = Response(chan, stream, environ["REQUEST_METHOD"] == "HEAD", payload[0] & P.FLAG_DIRECT)
    result = None
    _serving.request = (chan, stream)
    try:
        result = app(environ, resp.start_response)
        # inline body frames must not stand before FILE_ACK: inp.finish
        send_result(resp, result, inp.finish)
    except P.ProtocolError:
        raise
    except ClientGone:
        chan.send(_HEADER_pack(0, _END, stream))  # the master is draining up to here
    except Exception:
        fail(chan, stream, errors)
    finally:
        close_result(result, errors)
        errors.flush()
        _request_done()
        inp.finish()


def send_result(resp, result, before_file=None):
    """Send what the application returned through resp (a Response, or
    wsgate.lend's LentResponse): a list or tuple at once, a file_wrapper's
    file by sendfile, anything else block by block."""
    rtype = type(result)
    if rtype is list or rtype is tuple:
        if resp.sent:
            for block in result:
                resp.write(block)
            resp.finish()
        else:
            resp.send_list(result)
    elif rtype is FileWrapper and not resp.sent:
        if before_file is not None:
            before_file()
        if not resp.send_file(result):
            _send_iterable(resp, result)
    else:
        _send_iterable(resp, result)


def close_result(result, errors):
    """PEP 3333: the iterable's close(), whatever happened; what it raises
    goes to wsgi.errors."""
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            errors.write("wsgate: the response iterable's close() raised:\n" + traceback.format_exc())


_SIZED_ITERATORS = (type(iter([])), type(iter(())))


def _send_iterable(resp, result):
    write = resp.write
    it = iter(result)
    sized = type(it) in _SIZED_ITERATORS  # e.g. Django's HttpResponse: iter(a list)
    for block in it:
        if block:
            if sized and not it.__length_hint__():
                resp.send_last(block)  # known to be the last: one write with END
                return
            write(block)
    resp.finish()


def fail(chan, stream, errors):
    """Tell the master the request failed: it answers 500 (or cuts the
    response short if the headers are already out) and logs the traceback."""
    errors.flush()
    text = traceback.format_exc().encode("utf-8", "replace")
    chan.send(_HEADER_pack(len(text), P.ERROR, stream) + text)


def base_environ(threads, workers):
    return {
        "wsgi.version": (1, 0),
        "wsgi.multithread": threads > 1,
        "wsgi.multiprocess": workers > 1,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="wsgate.worker")
    parser.add_argument("--fds", help="comma-separated STREAM:DISPATCH socket fd pairs, one pair per thread")
    parser.add_argument("--workers", type=int, default=1, help="how many workers the master runs")
    parser.add_argument("--stacks-fd", type=int,
                        help="pipe to write every thread's stack to on SIGUSR1 (the master logs it)")
    parser.add_argument("--normal-sched", action="store_true",
                        help="the master runs under SCHED_BATCH, which this process inherited: go back to SCHED_OTHER")
    parser.add_argument("--lend-fds",
                        help="LEND:PAGE: the lend socket and the shared page; the master lends this worker "
                             "connections (wsgate.lend)")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="with --lend-fds: hand every connection back after this many requests (the master "
                             "then recycles the worker)")
    parser.add_argument("--max-head", type=int, default=65536,
                        help="the master's --max-header-size: the worker reads no longer request head itself")
    parser.add_argument("--preload-fd", type=int,
                        help="be the preloader: load the application once, then fork a worker for each "
                             "request of the master on this socket (wsgate.preload)")
    args = parser.parse_args(argv)
    if args.preload_fd is None and not args.fds:
        parser.error("--fds or --preload-fd is required")
    if args.stacks_fd is not None:
        arm_stacks(args.stacks_fd)
    if args.normal_sched:
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, OSError) as exc:
            sys.stderr.write("wsgate worker %d: staying under the master's scheduling policy: %s\n" % (os.getpid(), exc))
    # The master owns signals: Ctrl-C in a terminal must not interrupt a request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Before the application loads, so a logging handler it makes keeps the router.
    sys.stderr = StderrRouter(sys.stderr)
    if args.preload_fd is not None:
        from wsgate import preload
        return preload.run(args.preload_fd, args.workers)
    chans = []
    for pair in args.fds.split(","):
        stream_fd, _, disp_fd = pair.partition(":")
        if not disp_fd:
            parser.error("--fds: %r is not STREAM:DISPATCH" % pair)
        chans.append(channel(int(stream_fd), int(disp_fd)))
    node = read_node()
    try:
        app = load_app(node)
    except BaseException as exc:  # SystemExit too: the master says why
        data = load_error_message(exc)
        try:
            chans[0].send(P.frame(P.ERROR, 0, data))
        except OSError:
            sys.stderr.write("wsgate worker: cannot load the application: " + data.decode())
        return 3
    gc.collect()
    gc.freeze()
    if args.lend_fds:
        lend_fd, _, page_fd = args.lend_fds.partition(":")
        return run(chans, app, args.workers, (int(lend_fd), int(page_fd), args.max_head, args.max_requests))
    return run(chans, app, args.workers)


def channel(stream_fd, disp_fd):
    """A thread's channel on its two sockets (fds the master passed)."""
    socks = [socket.socket(fileno=stream_fd), socket.socket(fileno=disp_fd)]
    for sock in socks:
        sock.set_inheritable(False)  # a subprocess of the app must not hold our sockets open
    return P.Channel(*socks)


def read_node():
    """The node tree on stdin; stdin is /dev/null after it."""
    node = json.load(sys.stdin)
    try:
        sys.stdin.close()
        sys.stdin = open(os.devnull)
    except OSError:
        pass
    return node


def load_error_message(exc):
    """What the master gets when the application cannot load: the summary line, then the traceback."""
    message = describe_load_error(exc) + "\n" + traceback.format_exc()
    return message.encode("utf-8", "replace")


def run(chans, app, workers, lend=None):
    """Say READY on every channel, then serve each on a thread of its own
    (the first on this one) until the master closes them. With lend (the
    lend socket's and the shared page's descriptors) the one channel is
    served by the lending loop (wsgate.lend)."""
    ready = bytes((P.CTL_READY,)) + P.U32.pack(os.getpid())
    if lend is not None:
        # One line, before any request (docs/serve.md): which HTTP/1.1 parser serves the lent connections.
        from wsgate import http11
        sys.stderr.write("wsgate worker %d: lent connections: HTTP/1.1 parser in %s\n" % (os.getpid(), http11.SPEEDUPS_STATE))
    try:
        for chan in chans:
            chan.send(P.frame(P.CONTROL_FROM_WORKER, 0, ready))
    except OSError:
        return 0  # the master stopped wanting us while we loaded
    env = base_environ(len(chans), workers)
    if lend is not None:
        from wsgate import lend as lending
        lend_sock = socket.socket(fileno=lend[0])
        lend_sock.set_inheritable(False)
        chan = chans[0]
        try:
            lending.serve(chan, chan.disp, lend_sock, lend[1], app, env, lend[2], lend[3])
        except (P.ProtocolError, OSError) as exc:
            sys.stderr.write("wsgate worker %d: %s; exiting\n" % (os.getpid(), exc))
            sys.stderr.flush()
            os._exit(70)
        return 0
    threads = [threading.Thread(target=_serve_thread, args=(c, app, env), daemon=True) for c in chans[1:]]
    for t in threads:
        t.start()
    _serve_thread(chans[0], app, env)
    for t in threads:
        t.join()
    return 0


STACKS_ARMED = b"wsgate-stacks-armed\n"


def arm_stacks(fd):
    """SIGUSR1 writes every thread's Python stack to fd, the master's pipe.

    faulthandler's handler is C: it runs in whichever thread the signal
    lands on, at once, without the GIL, so the dump comes even while the
    main thread is stuck in C code that holds the GIL (a regex that never
    ends, a C extension's loop), where a Python-level handler or a
    watchdog thread would wait forever. What it shows is Python frames
    only (the frame that called into C, not the C stack), at most 100 per
    thread, no locals. The line written first tells the master SIGUSR1 is
    safe to send from now on (its default action kills the process).
    """
    os.set_inheritable(fd, False)  # a subprocess of the app must not keep the pipe open
    faulthandler.register(signal.SIGUSR1, file=fd, all_threads=True, chain=False)
    os.write(fd, STACKS_ARMED)


def _serve_thread(chan, app, env):
    try:
        serve(chan, app, env)
    except (P.ProtocolError, OSError) as exc:
        sys.stderr.write("wsgate worker %d: %s; exiting\n" % (os.getpid(), exc))
        sys.stderr.flush()
        os._exit(70)


if __name__ == "__main__":
    sys.exit(main())
