"""Lent connections, the worker's side (docs/architecture.md, "Lent
connections"; the master's side is internal/gateway/lend.go).

A REQUEST sent with FLAG_LEND brings the client's socket along. The worker
answers LENT on its stream socket, serves the request writing the HTTP
response itself, and keeps the connection: an epoll loop waits on the
dispatch socket and every connection it holds, reads each following request
(wsgate.http11), serves it and answers it, and the master is out of the loop.
A connection goes back to the master (RETURN, on the lend socket, with the
bytes read and not served) when anything is unusual: a request the parser
defers, a client that cannot take a streamed response at once (the rest
follows as OUTPUT, so a slow reader holds no worker; a whole response's rest
is written here as the client reads, OWED, for up to 2 s), an idle connection, a request that
runs long while others wait here (the master's SIGUSR2: the waiting ones go
back so another worker serves them), the worker's own drain.

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
import signal
import socket
import struct
import threading
import time
import traceback

from wsgate import http11
from wsgate import protocol as P
from wsgate import worker as W

_HEADER_pack = P.HEADER.pack
_NOSIGNAL = getattr(socket, "MSG_NOSIGNAL", 0)
_MORE = getattr(socket, "MSG_MORE", 0)
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLHUP = select.EPOLLHUP
_monotonic = time.monotonic
_time_ns = time.time_ns
_IDLE = 2.0  # a connection idle this long goes back to the master
_DRAIN_WAIT = 5  # ms a response waits for a client to make room before the master takes the rest

_SLOW = 0.002  # a request this long ends the batch of ready connections being served
_HEAVY = 0.020  # a connection whose requests take this long (Conn.cost) goes back to the master for good

KEEP, HANDED, CLOSE = 0, 1, 2  # what became of a connection after a request


class Page:
    """The shared page (lend.go: pageServing, pageSince, pageWritten,
    pageServed, pageAverage, pageIdle, pageLineLen; the request line at
    _LINE_AT)."""

    __slots__ = ("mm", "q")

    def __init__(self, fd):
        self.mm = mmap.mmap(fd, 4096)
        os.close(fd)
        self.q = memoryview(self.mm).cast("Q")


_LINE_AT = 128
_LINE_MAX = 1024


class Conn:
    __slots__ = ("id", "sock", "fd", "env", "buf", "last", "out_poll", "errors", "stderr", "line", "request", "out",
                 "cost", "ready")

    def __init__(self, cid, sock, env, buf):
        self.id = cid
        self.sock = sock
        self.fd = sock.fileno()
        # What every environ of the connection starts with: its constants
        # (http11.conn_constants) and the worker's base environ (Lender.conn_env).
        self.env = env
        self.buf = buf
        self.last = _monotonic()
        self.out_poll = None
        self.errors = None  # wsgi.errors and sys.stderr of its requests (LentErrors), made once
        self.stderr = None
        self.line = b""  # the request line of its current request (for LentErrors)
        self.request = None  # worker._serving.request while it is served: (lend channel, id), made with errors
        # The rest of a response the socket could not take at once
        # (memoryviews), written as the client reads while other requests
        # are served; None when nothing is owed.
        self.out = None
        self.cost = 0.0  # moving average of its requests' times, seconds: the loop serves cheap ones first
        self.ready = 0.0  # when the loop first saw it ready and passed it over (monotonic), 0 if not

    def writable(self, ms):
        """Whether the socket takes more bytes within ms milliseconds."""
        if self.out_poll is None:
            self.out_poll = select.poll()
            self.out_poll.register(self.fd, select.POLLOUT)
        return bool(self.out_poll.poll(ms))


class LendChannel:
    """The lend socket: each send is one whole frame sequence, under a lock
    (the application's threads may write to wsgi.errors) and marked busy (the
    SIGUSR2 handler must not send in the middle of another send)."""

    __slots__ = ("sock", "lock", "busy")

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.busy = False

    def send(self, data):
        with self.lock:
            self.busy = True
            try:
                self.sock.sendall(data)
            finally:
                self.busy = False

    def sendv(self, parts):
        with self.lock:
            self.busy = True
            try:
                for part in parts:
                    self.sock.sendall(part)
            finally:
                self.busy = False


class Lender:
    def __init__(self, chan, disp, lend_sock, page_fd, app, base_environ, max_head=http11.MAX_HEAD, max_requests=0):
        self.chan = chan
        self.disp = disp
        self.lend = LendChannel(lend_sock)
        page = Page(page_fd)
        self.page = page.q
        self.page_mm = page.mm
        self.app = app
        self.base = base_environ
        self.ep = select.epoll()
        self.conns = {}  # fd → Conn
        self.in_app = False  # the application runs: SIGUSR2 may hand waiting connections back
        self.serving = None  # the Conn being served
        self.since = 0.0  # when its request began (monotonic)
        self.took = 0.0  # how long the last one took
        self.heavy = _HEAVY  # a connection whose cost passes this goes back for good (_keep_off)
        self.avg = 0.002  # moving average of a request's time, seconds
        self.returning = False  # the server drains: keep no connection
        self.max_head = min(max_head, http11.MAX_HEAD)  # never more than the master's --max-header-size
        # After this many requests (--max-requests) the worker keeps no
        # connection: the master sees the count on the page and recycles it.
        self.max_requests = max_requests
        self.served = 0
        self.line = None  # the request line on the page
        self.clock = 0.0  # _monotonic() at the last _end
        # The dispatch socket ranks in the loop's order as a connection
        # does (_rank): the master's requests' usual time here, less half of
        # how long they have waited to be read.
        self.disp_cost = 0.0
        self.disp_ready = 0.0

    def conn_env(self, consts):
        """Conn.env of a connection with these constants: the base environ
        wins, as it does over the master's environ of a first request."""
        env = dict(consts)
        env.update(self.base)
        return env

    # ------------------------------------------------------------ the loop

    def run(self):
        disp_fd = self.disp.fileno()
        self.ep.register(disp_fd, _EPOLLIN)
        signal.signal(signal.SIGUSR2, self._rescue)
        signal.siginterrupt(signal.SIGUSR2, False)  # the application's blocking calls restart
        poll = self.ep.poll
        conns = self.conns
        disp_poll = select.poll()
        disp_poll.register(disp_fd, select.POLLIN)
        next_sweep = _monotonic() + _IDLE
        page = self.page
        while True:
            # The page says "idle" while this process waits in epoll (the
            # master moves connections from a busy worker to an idle one,
            # lend.go: rescue). Set around the wait itself, not after a
            # look that found nothing: that look cost an epoll_wait each
            # time the loop caught up (0.4 more system calls per hello
            # request); a wait that returns at once clears it within
            # microseconds, which the master, looking every 5 ms, rarely sees.
            page[5] = 1
            try:
                events = poll(_IDLE if conns else -1)
            except InterruptedError:
                continue
            finally:
                page[5] = 0
            fresh = False
            if len(events) > 1:
                # The connections whose requests have been the quickest
                # first: a connection that asks for a slow view again waits
                # for the quick ones that came meanwhile, not they for it;
                # its wait counts against its cost, so none starves (_rank).
                # The dispatch socket is ranked the same way by its own
                # requests' cost: the master parks the requests of the
                # connections it keeps (the slow ones, _keep_off) behind this
                # worker's, and a quick request must not wait for them.
                now = _monotonic()
                events.sort(key=lambda e: self._disp_rank(now, e[1]) if e[0] == disp_fd else _rank(conns, e[0], now))
            for fd, _ev in events:
                if fd == disp_fd:
                    # The requests waiting there (the master parked them
                    # behind this worker's request), while they are quick:
                    # after a slow one, the connections that became ready
                    # meanwhile are weighed against the rest again.
                    self.disp_ready = 0.0
                    try:
                        while True:
                            began = _monotonic()
                            self._dispatch()
                            took = _monotonic() - began
                            self.disp_cost += (took - self.disp_cost) / 4
                            if took > _SLOW or not disp_poll.poll(0):
                                break
                    except EOFError:
                        self._return_all()
                        return
                    if took > _SLOW:
                        break
                else:
                    c = conns.get(fd)
                    if c is None:
                        pass
                    elif c.out is not None:
                        self._writable(c)
                    else:
                        self._readable(c)
                        fresh = True
                        if self.took > _SLOW:
                            # Look again before the next connection: the
                            # quick requests that came meanwhile go first.
                            break
            if conns:
                now = self.clock if fresh else _monotonic()  # _readable's _end read the clock
                if now >= next_sweep:
                    next_sweep = now + _IDLE
                    self._return_idle(now)

    def _disp_rank(self, now, ev):
        """_rank for the dispatch socket; first when the master has closed
        it (this worker drains: its connections go back before another
        request of theirs is served here)."""
        if ev & _EPOLLHUP:
            return -1e9
        if not self.disp_ready:
            self.disp_ready = now
        return self.disp_cost - (now - self.disp_ready) * 0.5

    def _dispatch(self):
        """A REQUEST from the master: lent with its connection, or served
        as usual."""
        stream, payload, fds = self.chan.next_request_fds(self.disp)
        if stream == 0:
            for fd in fds:
                os.close(fd)
            if payload[0] == P.CTL_RETURN_ALL:
                self.returning = True
                self._return_all()
            return True
        if not payload[0] & P.FLAG_LEND:
            for fd in fds:
                os.close(fd)
            self.in_app = True  # SIGUSR2 may rescue the connections waiting here
            try:
                W.handle(self.chan, self.app, self.base, stream, payload)
            finally:
                self.in_app = False
                self.served += 1
                if self.max_requests and self.served >= self.max_requests and not self.returning:
                    self.returning = True
                    self._return_all()
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
        c = Conn(cid, sock, self.conn_env(http11.conn_constants(environ)), bytearray(buffered))
        self.conns[c.fd] = c
        self.ep.register(c.fd, _EPOLLIN)
        self._begin(c)
        environ.update(self.base)
        what = self._serve(c, environ, body)
        if what == KEEP and c.buf and c.out is None:
            self._serve_buffer(c)
        else:
            self._settle(c, what)
        return True

    def _readable(self, c):
        c.ready = 0.0
        self._begin(c)
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
        if not c.buf:
            # The common case: one whole request came, and nothing before it.
            r = http11.parse(data, 0, c.env, self.max_head)
            if r.__class__ is tuple and r[2] == len(data):
                what = self._serve(c, r[0], r[1])
                self.page[3] += 1  # see _serve_buffer
                if what == KEEP and not self.returning and c.out is None:
                    self._end()  # _settle's KEEP, inlined
                    c.last = self.clock
                    if c.cost > self.heavy:
                        self._keep_off(c)
                else:
                    self._settle(c, what)
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
        max_head = self.max_head
        while True:
            if pos == len(buf):
                del buf[:]
                self._settle(c, KEEP)
                return
            r = parse(buf, pos, c.env, max_head)
            if r is http11.NEED_MORE:
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
            if pos:
                self._begin(c)  # a request after another in the buffer: a new start
            environ, body, pos = r
            what = self._serve(c, environ, body)
            # Counted here, not in _serve: the master counts the request
            # that lent the connection (it dispatched it).
            self.page[3] += 1
            if what != KEEP or c.out is not None:
                # (A response still being written: the requests after it
                # wait until the client has all of it.)
                del buf[:pos]
                self._settle(c, what)
                return

    def _settle(self, c, what):
        """After a request: the connection stays (KEEP), its handed-over
        output ends with what is left of its buffer (HANDED), or it closes."""
        if what == KEEP and self.returning:
            self._give_back(c, 0, bytes(c.buf))
        elif what == KEEP:
            self._end()
            c.last = self.clock  # the time _end took
            if c.out is not None:
                self.ep.modify(c.fd, _EPOLLOUT)  # reading waits until the response is out
            elif c.cost > self.heavy:
                self._keep_off(c)
            return
        elif what == HANDED_DONE:
            pass
        elif what == HANDED:
            rest = bytes(c.buf)
            self._forget(c)
            self.lend.send(_return_frame(c.id, 0, rest))
        else:
            self._give_back(c, P.RETURN_CLOSE)
        if self.returning and self.conns:
            self._return_all()  # the others too, now, not at their next request
        self._end()

    # ------------------------------------------------------------ one request

    def _writable(self, c):
        """The client made room: more of the response owed to it. Once it
        has all of it, the connection is read again (and the requests
        already in its buffer are served)."""
        out = c.out
        try:
            while out:
                part = out[0]
                n = c.sock.send(part, _NOSIGNAL)
                if n < len(part):
                    out[0] = part[n:]
                    return
                del out[0]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            c.out = None
            self._give_back(c, P.RETURN_CLOSE)  # the client is gone
            return
        c.out = None
        self.lend.send(_owed_frame(c.id, 0))
        c.last = _monotonic()
        self.ep.modify(c.fd, _EPOLLIN)
        if c.buf:
            self._begin(c)
            self._serve_buffer(c)

    def _begin(self, c):
        q = self.page
        q[1] = _time_ns()
        q[2] = 0
        q[0] = c.id
        self.serving = c
        self.since = _monotonic()

    def _end(self):
        self.clock = now = _monotonic()
        if self.serving is not None:
            q = self.page
            q[0] = 0
            took = self.took = now - self.since
            self.avg += (took - self.avg) / 8
            q[4] = int(self.avg * 1e9)  # the master's rescue delay is 4 of these
            c = self.serving
            c.cost += (took - c.cost) / 4
            self.serving = None
            self.since = 0.0

    def _serve(self, c, environ, body):
        """Serve one request (environ: the connection's Conn.env and the
        request's keys); KEEP, HANDED or CLOSE."""
        method = environ["REQUEST_METHOD"]
        line = (method + " " + environ["REQUEST_URI"]).encode("latin-1")[:_LINE_MAX]
        if line != self.line:  # the page keeps the last one: a repeated line is not written again
            self.page_mm[_LINE_AT:_LINE_AT + len(line)] = line
            self.page[8] = len(line)
            self.line = line
        c.line = line
        errors = c.errors
        if errors is None:
            errors = c.errors = LentErrors(self.lend, c, P.LOG)
            c.stderr = LentErrors(self.lend, c, P.STDERR)
            c.request = (self.lend, c.id)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.errors"] = errors
        resp = LentResponse(self, c, method == "HEAD")
        result = None
        serving = W._serving
        serving.request = c.request
        serving.stderr = c.stderr
        what = KEEP
        self.in_app = True
        try:
            result = self.app(environ, resp.start_response)
            if result.__class__ is list and not resp.sent:
                resp.send_list(result)  # W.send_result's most common case
            else:
                W.send_result(resp, result)
            if resp.declared is not None and resp.count != resp.declared and not resp.head:
                what = CLOSE  # fewer or more bytes than its Content-Length: the client cannot tell where it ends
        except W.ClientGone:
            what = CLOSE
        except Exception:
            errors.flush()
            text = _line_prefix(line) + traceback.format_exc().encode("utf-8", "replace")
            self.lend.send(_HEADER_pack(len(text), P.ERROR, c.id) + text)
            if resp.sent:
                what = CLOSE  # cut short: the client must not take it for whole
            else:
                try:
                    resp.error_500()
                except W.ClientGone:
                    what = CLOSE
        finally:
            if result.__class__ is not list:
                W.close_result(result, errors)
            self.in_app = False
            if errors._pending:
                errors.flush()
            # W._request_done(), inlined: serving.stderr is c.stderr (set above)
            serving.stderr = serving.request = None
            if c.stderr._pending:
                c.stderr.flush()
            self.served += 1
            if self.max_requests and self.served >= self.max_requests:
                self.returning = True
        if resp.handed:
            return HANDED if what == KEEP else _handed_close(self, c)
        return what

    # ------------------------------------------------------------ giving back

    def _forget(self, c):
        """Stop watching c and close this process's descriptor of it."""
        if self.conns.pop(c.fd, None) is not None:
            try:
                self.ep.unregister(c.fd)
            except OSError:
                pass
        c.sock.close()

    def _give_back(self, c, flags, rest=b""):
        """The connection goes back to the master, with what is still owed
        of a response (as OUTPUT, which the master writes first)."""
        self._forget(c)
        out = c.out
        if out is None:
            self.lend.send(_return_frame(c.id, flags, rest))
            return
        c.out = None
        parts = [_return_frame(c.id, P.RETURN_OUTPUT, b"")]
        for piece in out:
            parts += W._data_parts(b"", c.id, piece, b"", P.OUTPUT)
        parts.append(_return_frame(c.id, flags, rest))
        self.lend.sendv(parts)

    def _keep_off(self, c):
        """A connection whose requests take over _HEAVY (its cost, the
        moving average: one request of 80 ms or more, or a few past 20, not
        one that waited for a core on a loaded machine) goes back to the
        master for good (RETURN_KEEP): lending saves the master ~0.1 ms a
        request, nothing against a slow one, and the master's path served
        the admin case (60-80 ms requests) as fast or faster."""
        self._give_back(c, P.RETURN_KEEP, bytes(c.buf))

    def _return_all(self):
        for c in list(self.conns.values()):
            self._give_back(c, 0, bytes(c.buf))

    def _return_idle(self, now):
        """Idle connections go back, and so do responses a client has been
        reading for longer than that: the master writes the rest (the
        worker's memory is not held for a slow reader)."""
        for c in list(self.conns.values()):
            if c is not self.serving and now - c.last > _IDLE and (not c.buf or c.out is not None):
                self._give_back(c, 0, bytes(c.buf))

    def _rescue(self, signum, frame):
        """SIGUSR2, from the master (lend.go, watchLent): the request being
        served has run long while connections wait here. They go back to the
        master, which gives their requests to a free worker. The handler
        runs on this (the main) thread between two bytecodes of the
        application, so it acts only while the application runs, and not
        inside a send on the lend socket."""
        if not self.in_app or self.lend.busy:
            return
        serving = self.serving
        ready = {fd for fd, _ev in self.ep.poll(0)}  # the connections with a request waiting (level-triggered: nothing consumed)
        waiting = [c for fd, c in self.conns.items()
                   if fd in ready and c is not serving and not c.buf and c.out is None]
        for c in waiting:
            self._give_back(c, 0)

_LINE_PREFIX = struct.Struct(">H").pack


def _line_prefix(line):
    return _LINE_PREFIX(len(line)) + line


class LentErrors(W.Errors):
    """wsgi.errors (and sys.stderr) of a request on a lent connection: each
    frame on the lend socket starts with the request line of the
    connection's current request (u16 length, then "METHOD URI"), so the
    master's log line names the request even when it reads the frame after
    the worker has moved on."""

    __slots__ = ("_conn",)

    def __init__(self, chan, conn, ftype):
        W.Errors.__init__(self, chan, conn.id, ftype)
        self._conn = conn

    def _send(self, text):
        data = _line_prefix(self._conn.line) + text.encode("utf-8", "replace")
        self._chan.send(_HEADER_pack(len(data), self._type, self._stream) + data)


def _handed_close(lender, c):
    """The output was handed over and the connection must end after it."""
    lender._forget(c)
    lender.lend.send(_return_frame(c.id, P.RETURN_CLOSE, b""))
    return HANDED_DONE


HANDED_DONE = 3  # handed over and ended: nothing left to settle


def _rank(conns, fd, now):
    """Where a ready connection goes in the loop's order: its requests'
    usual time, less half of how long it has been waiting: one passed over
    for quicker ones comes first once it has waited twice the difference
    (a view that takes 200 ms waits for the quick requests of two turns, not
    more; among requests that cost about the same the order stays close to
    their arrival)."""
    c = conns.get(fd)
    if c is None:
        return 0.0
    if not c.ready:
        c.ready = now
    return c.cost - (now - c.ready) * 0.5


def _owed_frame(cid, owed):
    return _HEADER_pack(1, P.OWED, cid) + bytes((owed,))


def _return_frame(cid, flags, rest):
    return _HEADER_pack(1 + len(rest), P.RETURN, cid) + bytes((flags,)) + rest


_CONTROL_CHARS = W._CONTROL_CHARS
_response_head = http11.response_head
_checked_length = http11.SPEEDUPS.checked_length if http11.SPEEDUPS is not None else None
_GOOD_STATUS = {}  # status → its code, for the statuses seen valid (W.check_status, no control character)
_GOOD_NAMES = set()  # header names seen valid (a token, not hop-by-hop)
_LENGTH_NAMES = set()  # the spellings of Content-Length seen


def _check_name(name):
    if type(name) is not str or not W._TOKEN(name):
        raise ValueError("header name %r is not an HTTP token (RFC 9110)" % (name,))
    lname = name.lower()
    if lname in W._HOP_BY_HOP:
        raise ValueError("hop-by-hop header %r is not allowed from a WSGI application (PEP 3333)" % name)
    if len(_GOOD_NAMES) < 4096:
        _GOOD_NAMES.add(name)
        if lname == "content-length":
            _LENGTH_NAMES.add(name)
    elif lname == "content-length":
        _LENGTH_NAMES.add(name)


class LentResponse(W.Response):
    """start_response and the body, written to the client as HTTP/1.1."""

    __slots__ = ("lender", "conn", "status", "headers", "chunked", "handed", "declared", "count", "whole")

    def __init__(self, lender, conn, is_head):
        # The fields of W.Response.__init__ this class reads, set here: this
        # runs once a request (next_poll is set when the output is handed over).
        self.is_head = self.head = is_head
        self.sent = False
        self.lender = lender
        self.conn = conn
        self.status = None
        self.headers = None
        self.chunked = False
        self.handed = False  # the master writes the rest (OUTPUT)
        self.declared = None  # the application's Content-Length
        self.count = 0  # body bytes sent
        # The response's bytes are all in memory (a list the application
        # returned): what the socket cannot take at once is owed, not waited for.
        self.whole = False

    def start_response(self, status, headers, exc_info=None):
        """worker.Response.start_response's checks, without encoding START."""
        code = None
        if status.__class__ is str and exc_info is None and self.status is None:
            code = _GOOD_STATUS.get(status)
        if code is None:
            W.check_status(status, exc_info, self.sent, self.status is not None)
        # The C speedups check the usual headers at once (False: these ones are for the loop below).
        length = False if _checked_length is None else _checked_length(headers, _GOOD_NAMES, _LENGTH_NAMES)
        if length is False:
            length = None
            for name, value in headers:
                if name not in _GOOD_NAMES:
                    _check_name(name)
                if value.__class__ is not str:
                    raise TypeError("header %r: value must be str, not %s" % (name, type(value).__name__))
                if _CONTROL_CHARS(value):
                    raise ValueError("control character in the status or a header: %r" % ([status] + list(headers),))
                if length is None and name in _LENGTH_NAMES:
                    length = value
        # The Content-Length response_head sends (an invalid one is dropped, as
        # net/http does): the first one decides (http11.app_length).
        if length is None:
            declared = None
        elif length.isdigit() and length.isascii() and len(length) <= 18:
            declared = int(length)  # http11.length_value's common case, inlined
        else:
            declared = http11.length_value(length)
        if code is None:
            if _CONTROL_CHARS(status):
                raise ValueError("control character in the status or a header: %r" % ([status] + list(headers),))
            code = int(status[:3])
            if len(_GOOD_STATUS) < 1024:
                _GOOD_STATUS[status] = code
        self.status = status
        self.headers = headers
        self.declared = declared
        self.has_length = declared is not None
        self.code = code
        self.head = self.is_head or code < 200 or code == 204 or code == 304
        return self.write

    def _head(self, length, chunked):
        if self.status is None:
            raise AssertionError("the application sent a body before calling start_response")
        head = _response_head(self.status, self.headers, length, chunked)
        self.sent = True  # only now: a value that is not latin-1 failed above, and the app gets its 500
        self.chunked = chunked
        return head

    def _out(self, data, more=0):
        """Write data to the client without blocking; what would block goes
        to the master, which writes it while this worker serves on. more:
        _MORE when the next write follows at once."""
        if self.handed:
            self._hand(data)
            return
        conn = self.conn
        if conn.out is not None:
            conn.out.append(memoryview(data))  # after the part already owed
            return
        sock = conn.sock
        total = len(data)
        n = 0
        # Counted before the write: a worker that dies just after it (the
        # client woken by the write can run first) must not have its
        # request answered 502 by the master on top of the response.
        self.lender.page[2] += total
        try:
            try:
                n = sock.send(data, _NOSIGNAL | more)
            except (BlockingIOError, InterruptedError):
                if not self.whole:
                    raise
            if n < total and self.whole:
                self._owe([memoryview(data)[n:]])
                return
            if n < total:
                view = memoryview(data)
                while n < total:
                    try:
                        n += sock.send(view[n:], _NOSIGNAL)
                    except (BlockingIOError, InterruptedError):
                        # A client reading at loopback or LAN speed makes
                        # room within a few milliseconds; one that does not
                        # gets the rest from the master.
                        if not self.conn.writable(_DRAIN_WAIT):
                            raise
        except (BlockingIOError, InterruptedError):
            self.handed = True
            self.next_poll = 0.0
            self.lender.lend.send(_return_frame(self.conn.id, P.RETURN_OUTPUT, b""))
            self._hand(memoryview(data)[n:])
        except OSError:
            raise W.ClientGone("the client closed the connection")

    def _hand(self, data):
        now = _monotonic()
        if now >= self.next_poll:
            # At most every 5 ms: has the client gone? (The master only
            # drops what it cannot write; the application must stop.)
            self.next_poll = now + 0.005
            try:
                if not self.conn.sock.recv(1, _PEEK):
                    raise W.ClientGone("the client closed the connection")
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                raise W.ClientGone("the client closed the connection")
        self.lender.lend.sendv(W._data_parts(b"", self.conn.id, data, b"", P.OUTPUT))

    def send_file(self, wrapper):
        """A wsgi.file_wrapper around a regular file goes out by sendfile(2)
        from this process; what the client's socket cannot take at once is
        read and handed to the master. False if the file cannot go that way."""
        found = W.regular_file(wrapper)
        if found is None:
            return False
        fd, offset, count = found
        f = wrapper.filelike
        if self.status is None:
            raise AssertionError("the application returned without calling start_response")
        length = count if not self.has_length and (self.is_head or not self.head) else None
        # MSG_MORE: the head waits for the file's first bytes, one segment
        # for the client instead of a small one ahead (_out_pair's reason).
        self._out(self._head(length, False), _MORE if count and not self.head else 0)
        if self.head:
            return True
        if self.declared is not None and self.declared >= 0:
            count = min(count, self.declared)
        sent = 0
        sock_fd = self.conn.fd
        self.lender.page[2] += count  # before the writes, as in _out
        while sent < count and not self.handed:
            try:
                n = os.sendfile(sock_fd, fd, offset + sent, count - sent)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                raise W.ClientGone("the client closed the connection")
            if not n:
                break  # the file shrank
            sent += n
        self.count += sent
        if sent < count:
            f.seek(offset + sent)
            while sent < count:
                block = f.read(min(count - sent, P.MAX_DATA_FRAME))
                if not block:
                    break
                sent += len(block)
                self.count += len(block)
                self._out(block)
        return True

    def _no_body(self):
        return self.head

    def send_list(self, blocks):
        data = b"".join(blocks)
        self.whole = True
        if self.status is None:
            raise AssertionError("the application returned without calling start_response")
        length = None
        if not self.has_length and (self.is_head or not self.head):
            length = len(data)
        head = _response_head(self.status, self.headers, length, False)  # self._head, inlined
        self.sent = True
        self.chunked = False
        if not self.head:
            data = self._fit(data)
        if self.head or not data:
            self._out(head)
        elif len(data) < 65536:
            self._out(head + data)
        else:
            self._out_pair(head, data)

    def _out_pair(self, head, data):
        """The head and a large body in one sendmsg: the client is woken by
        the body's arrival, not once for the head and again for the body
        (on loopback the reader then pays for receiving the segments that
        come while it reads: wrk spent twice the CPU per 1 MiB response).
        What the socket cannot take is owed, as in _out."""
        conn = self.conn
        if self.handed or conn.out is not None:
            self._out(head)
            self._out(data)
            return
        split = len(head)
        total = split + len(data)
        self.lender.page[2] += total  # before the write, as in _out
        try:
            n = conn.sock.sendmsg((head, data), (), _NOSIGNAL)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            raise W.ClientGone("the client closed the connection")
        if n < total:
            self._owe([memoryview(head)[n:], memoryview(data)] if n < split else [memoryview(data)[n - split:]])

    def _owe(self, rest):
        """The loop writes rest (memoryviews) as the client reads, serving
        other requests meanwhile; the master knows (OWED), so that a crash
        closes this connection instead of serving it again."""
        self.conn.out = rest
        self.lender.lend.send(_owed_frame(self.conn.id, 1))

    def write(self, data):
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("a WSGI body block must be bytes, not %s" % type(data).__name__)
            data = bytes(data)
        if not self.sent:
            head = self._head(None, not self.has_length and not self.head)
            if not self.head:
                data = self._fit(data)
            if self.head or not data:
                self._out(head)
                return
            self._out(head + self._frame(data))
            return
        if self.head or not data:
            return
        data = self._fit(data)
        if data:
            self._out(self._frame(data))

    def _fit(self, data):
        """data, cut where it would pass the declared Content-Length (the
        connection then closes: length_wrong), and counted."""
        declared = self.declared
        if declared is not None and declared >= 0 and self.count + len(data) > declared:
            data = data[:max(declared - self.count, 0)]
            self.count = declared + 1  # over: length_wrong from now on
            return data
        self.count += len(data)
        return data

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


def serve(chan, disp, lend_sock, page_fd, app, base_environ, max_head=http11.MAX_HEAD, max_requests=0):
    Lender(chan, disp, lend_sock, page_fd, app, base_environ, max_head, max_requests).run()
