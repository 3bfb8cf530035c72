"""Lent connections, the worker's side (docs/architecture.md, "Lent
connections"; the master's side is internal/gateway/lend.go).

A REQUEST sent with FLAG_LEND brings the client's socket along. The worker
answers LENT on its stream socket, serves the request writing the HTTP
response itself, and keeps the connection: an epoll loop waits on the
dispatch socket and every connection it holds, reads each following request
(wsgate.http11), serves it and answers it, and the master is out of the loop.
A connection goes back to the master (RETURN, on the lend socket, with the
bytes read and not served) when anything is unusual: a request the parser
defers, a client that cannot take the response at once (the rest follows as
OUTPUT, so a slow reader holds no worker), an idle connection, a request that
runs long while others wait here (the watchdog thread hands them back so
another worker serves them), the worker's own drain.

The shared page tells the master which connection is being served, since
when, and how many response bytes went out: if this process dies, the
master answers that request (or closes its connection) and gives every other
connection back untouched, because a connection is read only while it is
being served.
"""

import io
import mmap
import os
import select
import socket
import threading
import time
import traceback

from wsgate import http11
from wsgate import protocol as P
from wsgate import worker as W

_HEADER_pack = P.HEADER.pack
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_EPOLLIN = select.EPOLLIN
_monotonic = time.monotonic
_time_ns = time.time_ns
_IDLE = 2.0  # a connection idle this long goes back to the master
# Per-connection constants the parser takes from the first request's environ.
_CONN_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme")

KEEP, HANDED, CLOSE = 0, 1, 2  # what became of a connection after a request


class Page:
    """The shared page (lend.go: pageServing, pageSince, pageWritten, pageServed)."""

    __slots__ = ("mm", "q")

    def __init__(self, fd):
        self.mm = mmap.mmap(fd, 4096)
        os.close(fd)
        self.q = memoryview(self.mm).cast("Q")


class Conn:
    __slots__ = ("id", "sock", "fd", "consts", "buf", "last")

    def __init__(self, cid, sock, consts, buf):
        self.id = cid
        self.sock = sock
        self.fd = sock.fileno()
        self.consts = consts
        self.buf = buf
        self.last = _monotonic()


class LendChannel:
    """The lend socket, shared by the loop and the watchdog thread: each
    send is one whole frame sequence under the lock."""

    __slots__ = ("sock", "lock")

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data)

    def sendv(self, parts):
        with self.lock:
            for part in parts:
                self.sock.sendall(part)


class Lender:
    def __init__(self, chan, disp, lend_sock, page_fd, app, base_environ):
        self.chan = chan
        self.disp = disp
        self.lend = LendChannel(lend_sock)
        self.page = Page(page_fd).q
        self.app = app
        self.base = base_environ
        self.ep = select.epoll()
        self.conns = {}  # fd → Conn
        self.lock = threading.Lock()  # conns and the epoll set, with the watchdog
        self.serving = None  # the Conn being served
        self.since = 0.0  # when its request began (monotonic)
        self.avg = 0.002  # moving average of a request's time, seconds

    # ------------------------------------------------------------ the loop

    def run(self):
        disp_fd = self.disp.fileno()
        self.ep.register(disp_fd, _EPOLLIN)
        threading.Thread(target=self._watchdog, name="wsgate-lend-watchdog", daemon=True).start()
        poll = self.ep.poll
        conns = self.conns
        next_sweep = _monotonic() + _IDLE
        while True:
            try:
                events = poll(_IDLE if conns else -1)
            except InterruptedError:
                continue
            for fd, _ev in events:
                if fd == disp_fd:
                    try:
                        if not self._dispatch():
                            continue
                    except EOFError:
                        self._return_all()
                        return
                else:
                    # Claimed under the lock: the watchdog may be taking
                    # this connection to hand it back, and must not once
                    # its bytes are being read here (they would be lost).
                    with self.lock:
                        c = conns.get(fd)
                        if c is not None:
                            self._begin(c)
                    if c is not None:
                        self._readable(c)
            if conns:
                now = _monotonic()
                if now >= next_sweep:
                    next_sweep = now + _IDLE
                    self._return_idle(now)

    def _dispatch(self):
        """A REQUEST from the master: lent with its connection, or served
        as usual."""
        stream, payload, fds = self.chan.next_request_fds(self.disp)
        if not payload[0] & P.FLAG_LEND:
            for fd in fds:
                os.close(fd)
            self.since = _monotonic()  # the watchdog watches this one too
            try:
                W.handle(self.chan, self.app, self.base, stream, payload)
            finally:
                self.since = 0.0
            return True
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise P.ProtocolError("a lent REQUEST came with %d descriptors" % len(fds))
        environ = W._loads(payload[1:])
        cid = int(environ.pop("wsgate.lend"))
        buffered = environ.pop("wsgate.buffered", "").encode("latin-1")
        body = b""
        pending = self.chan.pending
        if payload[0] & P.FLAG_HAS_BODY:
            parts = []
            keep = []
            for frame in pending:
                if frame[1] == stream:
                    if frame[0] == P.BODY:
                        parts.append(bytes(frame[2]))
                else:
                    keep.append(frame)
            pending[:] = keep
            body = b"".join(parts)
        self.chan.send(_HEADER_pack(0, P.LENT, stream))
        sock = socket.socket(fileno=fds[0])
        consts = {k: environ[k] for k in _CONN_KEYS if k in environ}
        c = Conn(cid, sock, consts, bytearray(buffered))
        with self.lock:
            self.conns[c.fd] = c
            self.ep.register(c.fd, _EPOLLIN)
        self._begin(c)
        what = self._serve(c, environ, body)
        if what == KEEP and c.buf:
            self._serve_buffer(c)
        else:
            self._settle(c, what)
        return True

    def _readable(self, c):
        """c has bytes (the caller has begun serving it)."""
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            self._end()
            return
        except OSError:
            data = b""
        if not data:
            self._give_back(c, P.RETURN_CLOSE)  # the client closed it
            self._end()
            return
        c.buf += data
        self._serve_buffer(c)

    def _serve_buffer(self, c):
        """Serve the complete requests in c.buf (more bytes are read while a
        request is incomplete and they come at once); the connection goes
        back with what is left otherwise."""
        buf = c.buf
        pos = 0
        parse = http11.parse
        while True:
            r = parse(buf, pos, c.consts)
            if r is http11.NEED_MORE:
                if pos == len(buf):
                    del buf[:]
                    self._settle(c, KEEP)
                    return
                try:
                    more = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    more = None
                except OSError:
                    more = b""
                if more:
                    buf += more
                    continue
                if more == b"":
                    self._give_back(c, P.RETURN_CLOSE)  # closed inside a request
                    self._end()
                    return
            if r is http11.NEED_MORE or r is http11.DEFER:
                del buf[:pos]
                self._give_back(c, 0, bytes(buf))
                self._end()
                return
            environ, body, pos = r
            what = self._serve(c, environ, body)
            # Counted here, not in _serve: the master counts the request
            # that lent the connection (it dispatched it).
            self.page[3] += 1
            if what != KEEP:
                del buf[:pos]
                self._settle(c, what)
                return
            self._begin(c)  # the next request in the buffer: a new start

    def _settle(self, c, what):
        """After a request: the connection stays (KEEP), its handed-over
        output ends with what is left of its buffer (HANDED), or it closes."""
        if what == KEEP:
            c.last = _monotonic()
        elif what == HANDED_DONE:
            pass
        elif what == HANDED:
            rest = bytes(c.buf)
            self._forget(c)
            self.lend.send(_return_frame(c.id, 0, rest))
        else:
            self._give_back(c, P.RETURN_CLOSE)
        self._end()

    # ------------------------------------------------------------ one request

    def _begin(self, c):
        q = self.page
        q[1] = _time_ns()
        q[2] = 0
        q[0] = c.id
        self.serving = c
        self.since = _monotonic()

    def _end(self):
        if self.serving is not None:
            self.page[0] = 0
            self.avg += (_monotonic() - self.since - self.avg) / 8
            self.serving = None
            self.since = 0.0

    def _serve(self, c, environ, body):
        """Serve one request; KEEP, HANDED or CLOSE."""
        environ.update(self.base)
        errors = W.Errors(self.lend, c.id)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.errors"] = errors
        resp = LentResponse(self, c, environ["REQUEST_METHOD"] == "HEAD")
        result = None
        W._serving.request = (self.lend, c.id)
        what = KEEP
        try:
            result = self.app(environ, resp.start_response)
            rtype = type(result)
            if rtype is list or rtype is tuple:
                if resp.sent:
                    for block in result:
                        resp.write(block)
                    resp.finish()
                else:
                    resp.send_list(result)
            else:
                W._send_iterable(resp, result)
            if resp.length_wrong():
                what = CLOSE  # fewer or more bytes than its Content-Length: the client cannot tell where it ends
        except W.ClientGone:
            what = CLOSE
        except Exception:
            errors.flush()
            text = traceback.format_exc().encode("utf-8", "replace")
            self.lend.send(_HEADER_pack(len(text), P.ERROR, c.id) + text)
            if resp.sent:
                what = CLOSE  # cut short: the client must not take it for whole
            else:
                try:
                    resp.error_500()
                except W.ClientGone:
                    what = CLOSE
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    errors.write("wsgate: the response iterable's close() raised:\n" + traceback.format_exc())
            errors.flush()
            W._request_done()
        if resp.handed:
            return HANDED if what == KEEP else _handed_close(self, c)
        return what

    # ------------------------------------------------------------ giving back

    def _forget(self, c):
        """Stop watching c and close this process's descriptor of it; False
        if the watchdog took it first (it hands it back itself)."""
        with self.lock:
            if self.conns.get(c.fd) is not c:
                return False
            del self.conns[c.fd]
            try:
                self.ep.unregister(c.fd)
            except OSError:
                pass
        c.sock.close()
        return True

    def _give_back(self, c, flags, rest=b""):
        if self._forget(c):
            self.lend.send(_return_frame(c.id, flags, rest))

    def _return_all(self):
        for c in list(self.conns.values()):
            self._give_back(c, 0, bytes(c.buf))

    def _return_idle(self, now):
        for c in list(self.conns.values()):
            if c is not self.serving and now - c.last > _IDLE and not c.buf:
                self._give_back(c, 0)

    def _watchdog(self):
        """While a request runs long, the connections waiting here go back
        to the master, which gives them to a free worker: a request never
        waits long behind a slow one while another worker could serve it."""
        sleep = time.sleep
        while True:
            sleep(0.003)
            since = self.since
            if not since or len(self.conns) < 2:
                continue
            limit = min(max(4 * self.avg, 0.002), 1.0)
            if _monotonic() - since < limit:
                continue
            with self.lock:
                serving = self.serving
                if self.since != since:
                    continue
                waiting = [c for c in self.conns.values() if c is not serving and not c.buf]
                for c in waiting:
                    del self.conns[c.fd]
                    try:
                        self.ep.unregister(c.fd)
                    except OSError:
                        pass
            for c in waiting:
                c.sock.close()
                self.lend.send(_return_frame(c.id, 0, b""))


def _handed_close(lender, c):
    """The output was handed over and the connection must end after it."""
    lender._forget(c)
    lender.lend.send(_return_frame(c.id, P.RETURN_CLOSE, b""))
    return HANDED_DONE


HANDED_DONE = 3  # handed over and ended: nothing left to settle


def _return_frame(cid, flags, rest):
    return _HEADER_pack(1 + len(rest), P.RETURN, cid) + bytes((flags,)) + rest


class LentResponse(W.Response):
    """start_response and the body, written to the client as HTTP/1.1."""

    __slots__ = ("lender", "conn", "status", "headers", "chunked", "handed", "declared", "count")

    def __init__(self, lender, conn, is_head):
        W.Response.__init__(self, None, conn.id, is_head)
        self.lender = lender
        self.conn = conn
        self.status = None
        self.headers = None
        self.chunked = False
        self.handed = False  # the master writes the rest (OUTPUT)
        self.declared = None  # the application's Content-Length
        self.count = 0  # body bytes sent

    def start_response(self, status, headers, exc_info=None):
        write = W.Response.start_response(self, status, headers, exc_info)
        self.status = status
        self.headers = headers
        self.declared = None
        if self.has_length:
            for name, value in headers:
                if name.lower() == "content-length":
                    value = value.strip()
                    self.declared = int(value) if value.isdigit() else -1
        return write

    def _head(self, length, chunked):
        if self.status is None:
            raise AssertionError("the application sent a body before calling start_response")
        self.sent = True
        self.chunked = chunked
        return http11.response_head(self.status, self.headers, length, chunked, http11.http_date())

    def _out(self, data):
        """Write data to the client without blocking; what would block goes
        to the master, which writes it while this worker serves on."""
        if self.handed:
            self._hand(data)
            return
        sock = self.conn.sock
        total = len(data)
        n = 0
        try:
            n = sock.send(data, _NOSIGNAL)
            if n < total:
                view = memoryview(data)
                while n < total:
                    n += sock.send(view[n:], _NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            self.handed = True
            self.lender.lend.send(_return_frame(self.conn.id, P.RETURN_OUTPUT, b""))
            self._hand(memoryview(data)[n:])
        except OSError:
            raise W.ClientGone("the client closed the connection")
        finally:
            self.lender.page[2] += n

    def _hand(self, data):
        lend = self.lender.lend
        view = memoryview(data)
        for i in range(0, len(view), P.MAX_DATA_FRAME):
            chunk = view[i:i + P.MAX_DATA_FRAME]
            lend.sendv([_HEADER_pack(len(chunk), P.OUTPUT, self.conn.id), chunk])

    def _no_body(self):
        return self.head

    def send_list(self, blocks):
        data = b"".join(blocks)
        if self.status is None:
            raise AssertionError("the application returned without calling start_response")
        length = None
        if not self.has_length and (self.is_head or not self.head):
            length = len(data)
        head = self._head(length, False)
        if self.head or not data:
            self._out(head)
        else:
            self.count += len(data)
            self._out(head + data if len(data) < 65536 else head)
            if len(data) >= 65536:
                self._out(data)

    def write(self, data):
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("a WSGI body block must be bytes, not %s" % type(data).__name__)
            data = bytes(data)
        if not self.sent:
            head = self._head(None, not self.has_length and not self.head)
            if self.head or not data:
                self._out(head)
                return
            self.count += len(data)
            self._out(head + self._frame(data))
            return
        if self.head or not data:
            return
        self.count += len(data)
        self._out(self._frame(data))

    def _frame(self, data):
        if self.chunked:
            return b"%x\r\n" % len(data) + data + b"\r\n"
        return data

    def send_last(self, data):
        if not self.sent:
            self.send_list((data,))
            return
        self.write(data)
        self.finish()

    def finish(self):
        if not self.sent:
            self.send_list(())
            return
        if self.chunked:
            self._out(b"0\r\n\r\n")

    def length_wrong(self):
        return self.declared is not None and not self.head and self.count != self.declared

    def error_500(self):
        body = b"500 Internal Server Error\n"
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain; charset=utf-8")]
        self.has_length = False
        self.head = self.is_head
        self.send_list((body,))


def serve(chan, disp, lend_sock, page_fd, app, base_environ):
    Lender(chan, disp, lend_sock, page_fd, app, base_environ).run()
