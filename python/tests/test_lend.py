"""wsgate.lend, the worker's side of lent connections, driven in-process
over socketpairs: a "client" socket stands for the TCP connection, the lend
socket's other end for the master (internal/gateway/lend.go)."""

import marshal
import os
import socket
import struct
import tempfile
import threading
import time

import pytest

from wsgate import lend
from wsgate import protocol as P
from wsgate import worker as W


def hello(environ, start_response):
    body = b"hello " + environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Rig:
    """A Lender with one lent connection, and the sockets around it."""

    def __init__(self, app, sndbuf=None):
        self.stream_master, stream_worker = socket.socketpair()
        self.disp_master, disp_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lend_master, lend_worker = socket.socketpair()
        self.page_file = tempfile.TemporaryFile()
        self.page_file.truncate(4096)
        chan = P.Channel(stream_worker, disp_worker)
        self.lender = lend.Lender(chan, disp_worker, lend_worker, os.dup(self.page_file.fileno()), app,
                                  W.base_environ(1, 2))
        self.client, server = socket.socketpair()
        if sndbuf:
            for s in (self.client, server):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
        server.setblocking(False)
        consts = {"REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "4242", "wsgi.url_scheme": "http"}
        self.conn = lend.Conn(7, server, self.lender.conn_env(consts), bytearray())
        self.lender.conns[self.conn.fd] = self.conn
        self.lender.ep.register(self.conn.fd, lend._EPOLLIN)
        # A request slower than 20 ms would send the connection back for
        # good (the master's path serves it), which these tests are not
        # about: a loaded machine must not turn a fork into a hand-back.
        self.lender.heavy = 60.0
        self.lend_master.settimeout(5)
        self.client.settimeout(5)
        self.reader = self.client.makefile("rb")

    def send(self, data):
        self.client.sendall(data)
        self.lender._readable(self.conn)

    def response(self):
        """One response from the client's side: (status line, headers dict, body)."""
        f = self.reader
        status = f.readline().decode().rstrip("\r\n")
        headers = {}
        while True:
            line = f.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(": ")
            headers[name.lower()] = value
        if "content-length" in headers:
            body = f.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(f.readline().strip(), 16)
                chunk = f.read(size + 2)[:size]
                if not size:
                    break
                body += chunk
        else:
            body = b""
        return status, headers, body

    def frames(self):
        """Every frame the worker has sent the master on the lend socket so far."""
        self.lend_master.setblocking(False)
        data = b""
        try:
            while True:
                more = self.lend_master.recv(1 << 20)
                if not more:
                    break
                data += more
        except BlockingIOError:
            pass
        self.lend_master.setblocking(True)
        out = []
        while data:
            length, ftype, stream = P.HEADER.unpack_from(data, 0)
            out.append((ftype, stream, data[P.HEADER_SIZE:P.HEADER_SIZE + length]))
            data = data[P.HEADER_SIZE + length:]
        return out

    def page(self, i):
        return self.lender.page[i]

    def park(self, stream, path):
        """A request of the master's for path, waiting in the dispatch socket."""
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
                   "SERVER_NAME": "example.test", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1"}
        self.disp_master.send(P.frame(P.REQUEST, stream, bytes([0]) + marshal.dumps(environ)))

    def await_ends(self, n):
        """Read the stream socket up to the ENDs of n requests of the master's."""
        data = b""
        self.stream_master.settimeout(5)
        while True:
            data += self.stream_master.recv(65536)
            try:
                frames = P.decode_frames(data)
            except P.ProtocolError:  # a frame cut short: more to come
                continue
            if sum(f[0] == P.END for f in frames) == n:
                return


def recording(seen, slow_path=None, slow_seconds=0.01):
    """hello, noting each request's PATH_INFO in seen; slow_path takes
    slow_seconds."""
    def app(environ, start_response):
        seen.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == slow_path:
            time.sleep(slow_seconds)
        return hello(environ, start_response)
    return app


def get(path, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: example.test:8080\r\n%s\r\n" % (path, extra)).encode()


def test_keep_alive_requests_are_served_on_the_connection():
    rig = Rig(hello)
    for path in ("/a", "/b%20c"):
        rig.send(get(path))
        status, headers, body = rig.response()
        assert status == "HTTP/1.1 200 OK"
        assert body == b"hello " + ("/b c" if path != "/a" else "/a").encode()
        assert "date" in headers
    assert rig.page(3) == 2  # lent requests served
    assert rig.page(0) == 0  # nothing in flight
    assert rig.frames() == []  # the connection stays with the worker
    assert rig.conn.fd in rig.lender.conns


def test_pipelined_requests_in_one_read_are_answered_in_order():
    rig = Rig(hello)
    rig.send(get("/1") + get("/2") + get("/3"))
    assert [rig.response()[2] for _ in range(3)] == [b"hello /1", b"hello /2", b"hello /3"]


def test_streamed_body_without_length_is_chunked():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"ab", b"", b"cde"])
    rig = Rig(app)
    rig.send(get("/"))
    status, headers, body = rig.response()
    assert headers.get("transfer-encoding") == "chunked"
    assert body == b"abcde"


def test_head_keeps_the_length_and_204_has_no_body():
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/none":
            start_response("204 No Content", [])
            return [b"not sent"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"twelve bytes"]
    rig = Rig(app)
    rig.client.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    rig.lender._readable(rig.conn)
    head = rig.client.recv(65536)
    assert b"Content-Length: 12\r\n" in head and head.endswith(b"\r\n\r\n")
    rig.send(get("/none"))
    reply = rig.client.recv(65536)
    assert reply.startswith(b"HTTP/1.1 204") and reply.endswith(b"\r\n\r\n")
    assert b"Content-Length" not in reply and b"not sent" not in reply


def test_bytes_past_the_declared_length_are_cut_and_the_connection_ends():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "5")])
        return [b"12345", b"6789"]
    rig = Rig(app)
    rig.send(get("/"))
    status, headers, body = rig.response()
    assert body == b"12345"
    (ftype, stream, payload), = rig.frames()
    assert (ftype, stream, payload[0]) == (P.RETURN, 7, P.RETURN_CLOSE)
    assert rig.reader.read() == b""  # nothing more on the wire, then the end: the worker closed its descriptor
    assert rig.conn.fd not in rig.lender.conns


def test_a_request_the_parser_defers_goes_back_with_its_bytes():
    rig = Rig(hello)
    raw = get("/", "Connection: close\r\n")
    rig.send(raw)
    (ftype, stream, payload), = rig.frames()
    assert (ftype, stream) == (P.RETURN, 7)
    assert payload[0] == 0 and payload[1:] == raw  # the master serves it, from its first byte
    assert rig.conn.fd not in rig.lender.conns


def test_an_application_error_is_a_500_and_a_traceback_naming_the_request():
    def app(environ, start_response):
        raise RuntimeError("boom")
    rig = Rig(app)
    rig.send(get("/fail?x=1"))
    status, headers, body = rig.response()
    assert status.startswith("HTTP/1.1 500")
    (ftype, stream, payload), = rig.frames()
    assert (ftype, stream) == (P.ERROR, 7)
    n = struct.unpack(">H", payload[:2])[0]
    assert payload[2:2 + n] == b"GET /fail?x=1"
    assert b"RuntimeError: boom" in payload


def test_a_streamed_response_a_client_does_not_read_goes_to_the_master():
    size = 4 << 20

    def app(environ, start_response):
        # A generator: the worker cannot keep the rest and serve on, since
        # producing it is the application's work.
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        for _ in range(size // (256 << 10)):
            yield os.urandom(1024) * 256
    rig = Rig(app, sndbuf=65536)
    # The master's side of the lend socket reads all along, as lend.go does.
    got = bytearray()
    done = threading.Event()

    def master():
        while True:
            data = rig.lend_master.recv(1 << 20)
            if not data:
                break
            got.extend(data)
            if _ends_with_final_return(got):
                done.set()
    threading.Thread(target=master, daemon=True).start()
    rig.send(get("/big"))  # returns once the worker is free: it never waited for the client
    assert done.wait(10), "the handed output never ended with a RETURN"
    frames = _parse(bytes(got))
    assert frames[0][0] == P.RETURN and frames[0][2][0] == P.RETURN_OUTPUT
    assert frames[-1] == (P.RETURN, 7, b"\0")  # the output ends: the connection goes back
    handed = b"".join(p for t, _, p in frames if t == P.OUTPUT)
    assert handed
    head, _, body = (_drain(rig.client) + handed).partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % size in head
    assert len(body) == size
    assert rig.conn.fd not in rig.lender.conns


def _drain(sock):
    """What the client's socket holds now."""
    data = b""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            try:
                more = sock.recv(1 << 20)
            except BlockingIOError:
                return data
            if not more:
                return data
            data += more
    finally:
        sock.settimeout(timeout)


def _big_list(size):
    body = os.urandom(1024) * (size // 1024)

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/big":
            return hello(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return [body]
    return app, body


def test_a_whole_response_the_socket_cannot_take_is_owed_and_written_as_the_client_reads():
    app, big = _big_list(4 << 20)
    rig = Rig(app, sndbuf=65536)
    # A second request in the same read: it is served only after the whole
    # first response, on the same connection.
    rig.send(get("/big") + get("/after"))
    assert rig.page(0) == 0, "the worker must be free while the client has not read the response"
    assert rig.frames() == [(P.OWED, 7, b"\1")]
    assert rig.conn.out is not None and rig.conn.fd in rig.lender.conns
    received = b""
    while rig.conn.out is not None:
        received += _drain(rig.client)
        rig.lender._writable(rig.conn)
    assert rig.frames() == [(P.OWED, 7, b"\0")]
    received += _drain(rig.client)
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: %d" % len(big) in head
    assert rest[:len(big)] == big
    second = rest[len(big):]
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"hello /after")
    assert rig.page(3) == 2 and rig.conn.fd in rig.lender.conns


def test_an_owed_response_the_client_does_not_read_goes_to_the_master(monkeypatch):
    app, big = _big_list(4 << 20)
    rig = Rig(app, sndbuf=65536)
    rig.send(get("/big") + get("/after"))
    assert rig.frames() == [(P.OWED, 7, b"\1")]
    direct = _drain(rig.client)
    # Past the idle time the rest goes to the master, with the unserved request.
    got = bytearray()
    done = threading.Event()

    def master():
        while not done.is_set():
            got.extend(rig.lend_master.recv(1 << 20))
            done.set() if _ends_with_final_return(got) else None
    threading.Thread(target=master, daemon=True).start()
    rig.lender._return_idle(lend._monotonic() + lend._IDLE + 1)
    assert done.wait(10), "the owed output never ended with a RETURN"
    frames = _parse(bytes(got))
    assert frames[0] == (P.RETURN, 7, bytes((P.RETURN_OUTPUT,)))
    assert frames[-1] == (P.RETURN, 7, b"\0" + get("/after"))
    handed = b"".join(p for t, _, p in frames if t == P.OUTPUT)
    head, _, body = (direct + handed).partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(big) in head and body == big
    assert rig.conn.fd not in rig.lender.conns


def test_an_owed_response_to_a_client_that_left_closes_the_connection():
    app, _ = _big_list(4 << 20)
    rig = Rig(app, sndbuf=65536)
    rig.send(get("/big"))
    assert rig.frames() == [(P.OWED, 7, b"\1")]
    rig.reader.close()  # (its file holds the socket open)
    rig.client.close()
    rig.lender._writable(rig.conn)
    assert rig.frames() == [(P.RETURN, 7, bytes((P.RETURN_CLOSE,)))]
    assert rig.conn.fd not in rig.lender.conns


def _parse(data):
    out = []
    while len(data) >= P.HEADER_SIZE:
        length, ftype, stream = P.HEADER.unpack_from(data, 0)
        if len(data) < P.HEADER_SIZE + length:
            break
        out.append((ftype, stream, data[P.HEADER_SIZE:P.HEADER_SIZE + length]))
        data = data[P.HEADER_SIZE + length:]
    return out


def _ends_with_final_return(data):
    frames = _parse(bytes(data))
    return len(frames) > 1 and frames[-1][0] == P.RETURN and frames[-1][2][:1] == b"\0"


def test_rescue_hands_back_only_connections_with_a_request_waiting():
    rig = Rig(hello)
    idle, idle_server = socket.socketpair()
    waiting, waiting_server = socket.socketpair()
    for i, s in enumerate((idle_server, waiting_server)):
        s.setblocking(False)
        c = lend.Conn(20 + i, s, {}, bytearray())
        rig.lender.conns[c.fd] = c
        rig.lender.ep.register(c.fd, lend._EPOLLIN)
    waiting.sendall(get("/queued"))
    rig.lender.serving = rig.conn
    rig.lender.in_app = True  # as if SIGUSR2 came while the application runs
    rig.lender._rescue(0, None)
    (ftype, stream, payload), = rig.frames()
    assert (ftype, stream, payload) == (P.RETURN, 21, b"\0")
    assert idle_server.fileno() in rig.lender.conns and rig.conn.fd in rig.lender.conns
    rig.lender.in_app = False
    rig.lender._rescue(0, None)  # between requests it does nothing
    assert rig.frames() == []


@pytest.mark.parametrize("served", [1, 3])
def test_max_requests_hands_every_connection_back(served):
    rig = Rig(hello)
    rig.lender.max_requests = served
    for i in range(served):
        rig.send(get("/%d" % i))
        assert rig.response()[2] == b"hello /%d" % i
    (ftype, stream, payload), = rig.frames()
    assert (ftype, stream, payload) == (P.RETURN, 7, b"\0")
    assert rig.lender.conns == {}


def test_the_page_counts_response_bytes_before_they_are_written():
    # A worker that dies just after a write (the client it woke may run
    # first) must not look to the master as if it had sent nothing: that
    # request would be answered 502 on top of its response.
    rig = Rig(hello)
    seen = []

    class Watched:
        def __init__(self, sock):
            self.sock = sock

        def send(self, data, flags=0):
            seen.append((rig.page(2), len(data)))
            return self.sock.send(data, flags)

        def __getattr__(self, name):
            return getattr(self.sock, name)
    rig.conn.sock = Watched(rig.conn.sock)
    rig.send(get("/a"))
    assert rig.response()[2] == b"hello /a"
    assert seen and all(counted >= size > 0 for counted, size in seen), seen


def test_the_loop_serves_the_quickest_connections_first():
    order = []
    rig = Rig(recording(order))
    quick_client, quick_server = socket.socketpair()
    quick_server.setblocking(False)
    quick = lend.Conn(8, quick_server, {}, bytearray())
    rig.lender.conns[quick.fd] = quick
    rig.lender.ep.register(quick.fd, lend._EPOLLIN)
    rig.conn.cost, quick.cost = 0.2, 0.001  # the first connection's requests have been slow
    # Both waiting when the loop looks, the slow one's first.
    rig.client.sendall(get("/slow"))
    quick_client.sendall(get("/quick"))
    got = []

    def client():
        got.append(rig.response()[2])
        got.append(quick_client.recv(4096))
        rig.disp_master.close()  # the master's EOF ends the loop
    threading.Thread(target=client, daemon=True).start()
    rig.lender.run()  # on the main thread: it installs the SIGUSR2 handler
    assert got[0] == b"hello /slow" and got[1].endswith(b"hello /quick")
    assert order == ["/quick", "/slow"]


@pytest.mark.parametrize("disp_cost, conn_cost, want", [
    (0.2, 0.001, ["/quick", "/parked"]),  # the master's requests here have been slow: the quick one first
    (0.0, 0.2, ["/parked", "/quick"]),  # and the other way round
])
def test_the_masters_requests_are_ranked_by_their_cost_too(disp_cost, conn_cost, want):
    order = []
    rig = Rig(recording(order))
    rig.lender.disp_cost, rig.conn.cost = disp_cost, conn_cost
    # A request of the master's parked in the dispatch socket, and one on the
    # lent connection, both waiting when the loop looks.
    rig.park(5, "/parked")
    rig.client.sendall(get("/quick"))
    got = []

    def master():
        got.append(rig.response()[2])
        rig.await_ends(1)
        rig.disp_master.close()  # the master's EOF ends the loop
    threading.Thread(target=master, daemon=True).start()
    rig.lender.run()
    assert got == [b"hello /quick"]
    assert order == want
    # What the dispatched request took moves the dispatch socket's cost.
    assert rig.lender.disp_cost != disp_cost


def test_a_slow_request_of_the_masters_lets_waiting_connections_in_before_the_next():
    order = []
    rig = Rig(recording(order, "/slow"))
    rig.conn.cost = 0.0001
    # Two requests of the master's parked in the dispatch socket, the first
    # slow, and one on the lent connection.
    rig.park(5, "/slow")
    rig.park(7, "/second")
    rig.client.sendall(get("/quick"))

    def master():
        rig.response()
        rig.await_ends(2)
        rig.disp_master.close()
    threading.Thread(target=master, daemon=True).start()
    rig.lender.run()
    assert order == ["/slow", "/quick", "/second"]


def test_a_draining_worker_hands_back_a_waiting_request_before_serving_it():
    served = []
    rig = Rig(recording(served))
    rig.lender.disp_cost, rig.conn.cost = 0.2, 0.0001  # the master's requests here have been slow
    request = get("/after-the-drain")
    rig.client.sendall(request)
    master_side = rig.conn.sock.dup()  # the master's descriptor of the connection
    rig.disp_master.close()  # the master's EOF: this worker drains
    rig.lender.run()
    assert served == []
    # Handed back with the request unread: the master's server reads it.
    assert rig.frames() == [(P.RETURN, rig.conn.id, bytes([0]))]
    assert master_side.recv(4096, socket.MSG_PEEK) == request


def test_a_connection_passed_over_for_quicker_ones_is_not_starved():
    rig = Rig(hello)
    quick_server = socket.socketpair()[1]
    quick = lend.Conn(8, quick_server, {}, bytearray())
    rig.lender.conns[quick.fd] = quick
    slow = rig.conn
    slow.cost, quick.cost = 0.08, 0.06
    conns = rig.lender.conns
    t = 100.0
    # Both ready at every look; the quick one is served each time (its wait
    # starts again), the slow one keeps waiting from its first look.
    order = []
    for _ in range(10):
        ranked = sorted((slow.fd, quick.fd), key=lambda fd: lend._rank(conns, fd, t))
        served = conns[ranked[0]]
        order.append("slow" if served is slow else "quick")
        served.ready = 0.0
        t += 0.06
    assert order[0] == "quick"
    assert "slow" in order[:2], order  # its 20 ms of extra cost is made up after 40 ms of waiting


def forking(environ, start_response):
    """Forks; the child parses a request with wsgate.http11 as this process
    has it (the C module or not) and exits 0 if the environ is right."""
    from wsgate import http11
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            r = http11.parse(get("/child?x=1"), 0, {"wsgi.url_scheme": "http"}, http11.MAX_HEAD)
            code = 0 if r[0]["PATH_INFO"] == "/child" and r[0]["QUERY_STRING"] == "x=1" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    body = b"child %d" % os.waitstatus_to_exitcode(status)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# Other tests here leave threads behind; the child only parses and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_an_application_that_forks_keeps_serving_and_its_child_parses():
    rig = Rig(forking)
    for path in ("/a", "/b"):
        rig.send(get(path))
        status, _, body = rig.response()
        assert (status, body) == ("HTTP/1.1 200 OK", b"child 0")
    assert rig.page(3) == 2


def test_a_large_body_goes_out_with_its_head_in_one_write():
    # The client is woken once, by a whole response, not by a small head
    # and then again by the body (wrk spent twice the CPU per 1 MiB).
    app, big = _big_list(1 << 20)
    rig = Rig(app, sndbuf=4 << 20)
    writes = []

    class Watched:
        def __init__(self, sock):
            self.sock = sock

        def send(self, data, flags=0):
            writes.append(len(data))
            return self.sock.send(data, flags)

        def sendmsg(self, buffers, *args):
            writes.append(sum(len(b) for b in buffers))
            return self.sock.sendmsg(buffers, *args)

        def __getattr__(self, name):
            return getattr(self.sock, name)
    rig.conn.sock = Watched(rig.conn.sock)
    got = []
    reader = threading.Thread(target=lambda: got.append(rig.response()))
    reader.start()
    rig.send(get("/big"))
    while rig.conn.out is not None:
        rig.lender._writable(rig.conn)
    reader.join(10)
    assert got and got[0][2] == big
    assert writes[0] > len(big), writes  # the head and the whole body, offered in one call


def test_a_slow_request_sends_its_connection_back_for_good():
    def slow(environ, start_response):
        time.sleep(float(environ["QUERY_STRING"]))
        return hello(environ, start_response)
    rig = Rig(slow)
    rig.lender.heavy = lend._HEAVY
    # One request past 20 ms but not four times that (a hiccup): it stays.
    rig.send(get("/slow?0.03"))
    assert rig.response()[2] == b"hello /slow"
    assert rig.frames() == []
    # One past 80 ms: back for good.
    rig.send(get("/slow?0.09"))
    assert rig.response()[2] == b"hello /slow"
    assert rig.frames() == [(P.RETURN, 7, bytes((P.RETURN_KEEP,)))]
    assert rig.conn.fd not in rig.lender.conns
