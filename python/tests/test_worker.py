"""The worker runtime against a fake master speaking the protocol over real
socketpairs: each test starts `python -m wsgate.worker` with the interpreter
that runs the test (`make test` runs this file on every CPython from 3.9 up,
scripts/test-pythons.sh) and checks the frames it answers. The applications are wrapped in wsgiref.validate.validator."""

import hashlib
import json
import marshal
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "worker_fixtures")
sys.path.insert(0, PYDIR)

from wsgate import protocol as P  # noqa: E402


BASE = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
    "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
    "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost",
}


class Worker:
    """A worker process and the master's ends of its sockets."""

    def __init__(self, python, spec, threads=1, workers=1):
        pairs = [socket.socketpair() for _ in range(threads)]
        disp_pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(threads)]
        child_fds = [fd for (_, c), (_, d) in zip(pairs, disp_pairs) for fd in (c.fileno(), d.fileno())]
        fds = ",".join("%d:%d" % (c.fileno(), d.fileno()) for (_, c), (_, d) in zip(pairs, disp_pairs))
        env = dict(os.environ, PYTHONPATH=PYDIR)
        node = {"object_type": "application", "protocol": "wsgate.callable", "factory": spec,
                "global_conf": {}, "local_conf": {}}
        self.proc = subprocess.Popen(
            [python, "-m", "wsgate.worker", "--fds", fds, "--workers", str(workers)],
            stdin=subprocess.PIPE, pass_fds=child_fds, cwd=FIXTURES, env=env)
        self.proc.stdin.write(json.dumps(node).encode())
        self.proc.stdin.close()
        for _, c in pairs:
            c.close()
        # the worker's dispatch ends stay open here too, as in the Go master,
        # which takes back messages through them (withdraw)
        self.worker_disps = [d for _, d in disp_pairs]
        self.socks = [p for p, _ in pairs]
        self.disps = [m for m, _ in disp_pairs]
        self.chans = [P.Channel(s) for s in self.socks]
        self.stream = 0

    def dispatch(self, data, slot=0):
        """One dispatch message: a REQUEST frame and its inline body."""
        self.disps[slot].send(data)

    def ready(self):
        for chan in self.chans:
            ftype, stream, payload = chan.read_frame()
            assert (ftype, stream) == (P.CONTROL_FROM_WORKER, 0), (ftype, payload)
            assert payload[0] == P.CTL_READY
            assert P.U32.unpack(payload[1:]) == (self.proc.pid,)
        return self

    def request(self, slot=0, body=None, inline=True, file_ack=1, chunk=None, direct=None, **environ):
        """Send one request; return [(type, payload)] up to END or ERROR.
        direct: None, no DIRECT flag; a socket, lent with DIRECT_ACK(1) (as
        the master lends the client's); False, DIRECT_ACK(0)."""
        self.stream += 1
        stream = self.stream
        env = dict(BASE, **environ)
        flags = 0 if direct is None else P.FLAG_DIRECT
        tail = b""
        if body is not None:
            flags |= P.FLAG_HAS_BODY
            if inline:
                flags |= P.FLAG_BODY_INLINE
                tail = (P.frame(P.BODY, stream, body) if body else b"") + P.frame(P.BODY_END, stream)
        chan = self.chans[slot]
        self.dispatch(P.frame(P.REQUEST, stream, bytes((flags,)) + marshal.dumps(env)) + tail, slot)
        pending = body
        out = []
        while True:
            ftype, fstream, payload = chan.read_frame()
            if ftype == P.LOG:
                out.append((ftype, payload))
                continue
            assert fstream == stream
            if ftype == P.CREDIT:
                assert not inline
                (n,) = P.U32.unpack(payload)
                assert n > 0
                if pending:
                    take = min(n, chunk or n)
                    chan.send(P.frame(P.BODY, stream, pending[:take]))
                    pending = pending[take:]
                else:
                    chan.send(P.frame(P.BODY_END, stream))
                continue
            out.append((ftype, payload))
            if ftype == P.FILE:
                fd, offset, count = P.FILE_PAYLOAD.unpack(payload)
                # Open the worker's descriptor as the Go master does.
                self.sent_file = open("/proc/%d/fd/%d" % (self.proc.pid, fd), "rb")
                self.sent_file.seek(offset)
                self.file_bytes = self.sent_file.read(count)
                chan.send(P.frame(P.FILE_ACK, stream, bytes((file_ack,))))
            if ftype == P.DIRECT:
                ack = P.frame(P.DIRECT_ACK, stream, bytes((1 if direct else 0,)))
                if direct:
                    socket.send_fds(self.socks[slot], [ack], [direct.fileno()])
                else:
                    chan.send(ack)
            if ftype in (P.END, P.ERROR):
                return out

    def trailing_logs(self, slot=0):
        """LOG frames sent after END (an iterable's close())."""
        out = []
        chan = self.chans[slot]
        self.socks[slot].settimeout(5)
        ftype, _, payload = chan.read_frame()
        out.append((ftype, payload))
        return out

    def close(self):
        for s in self.socks + self.disps + self.worker_disps:
            s.close()
        return self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def python():
    return sys.executable


def serve(python, name, **kw):
    return Worker(python, "worker_apps:" + name, **kw).ready()


def start_of(frames):
    assert frames[0][0] == P.START, frames
    return P.decode_start(frames[0][1])


def body_of(frames):
    return b"".join(p for t, p in frames if t == P.DATA)


def types(frames):
    return [P.NAMES[t] for t, _ in frames if t != P.LOG]


def test_validated_hello(python):
    w = serve(python, "hello")
    frames = w.request()
    assert types(frames)[0] == "START" and types(frames)[-1] == "END"
    assert body_of(frames) == b"Hello, world!\n"
    w.close()


def test_list_body_goes_in_one_batch_with_content_length(python):
    w = serve(python, "hello_raw")
    frames = w.request()
    assert types(frames) == ["START", "DATA", "END"]
    status, headers = start_of(frames)
    assert status == "200 OK"
    assert ("Content-Length", "14") in headers
    assert body_of(frames) == b"Hello, world!\n"
    # the loop goes on: a second request on the same socket
    assert body_of(w.request()) == b"Hello, world!\n"
    assert w.close() == 0


def test_environ_keys_and_modes(python):
    w = serve(python, "environ_dump", threads=2, workers=3)
    frames = w.request(slot=1, PATH_INFO="/caf\u00e9", QUERY_STRING="a=%C3%A9", HTTP_X_DUP="a, b",
                       CONTENT_TYPE="text/plain")
    env = json.loads(body_of(frames))
    assert env["PATH_INFO"] == "/caf\u00e9"
    assert env["QUERY_STRING"] == "a=%C3%A9"
    assert env["HTTP_X_DUP"] == "a, b"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["http_content_type"] is False
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.version"] == [1, 0]
    w.close()


def test_single_thread_single_process_flags(python):
    w = serve(python, "environ_dump")
    env = json.loads(body_of(w.request()))
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    w.close()


BODY = b"".join(b"line %d of the body\n" % i for i in range(5000)) + b"no newline at the end"


@pytest.mark.parametrize("mode", ["read7", "readline", "readline5", "iter", "readlines"])
@pytest.mark.parametrize("inline", [True, False], ids=["inline", "credit"])
def test_wsgi_input_reads_to_eof(python, mode, inline):
    w = serve(python, "echo")
    body = BODY if not inline else BODY[:3000]
    frames = w.request(body=body, inline=inline, chunk=1000, REQUEST_METHOD="POST",
                       QUERY_STRING=mode, CONTENT_LENGTH=str(len(body)))
    assert body_of(frames) == b"%d %s\n" % (len(body), hashlib.sha256(body).hexdigest().encode())
    w.close()


# Large enough for BODY frames of 300,000 bytes (received straight into
# wsgi.input's buffer), and different on every line so that a stale byte of
# the buffer kept from the request before would change the hash.
BIG_BODY = b"".join(b"%d:%s\n" % (i, b"abcdefghij"[i % 10:] * (i % 97)) for i in range(9000))


@pytest.mark.parametrize("mode", ["read7", "read70001", "readline", "readline5"])
def test_wsgi_input_large_frames(python, mode):
    w = serve(python, "echo")
    for body in (BIG_BODY, BIG_BODY[:len(BIG_BODY) // 2][::-1], BIG_BODY):  # the buffer is reused
        frames = w.request(body=body, inline=False, chunk=300000, REQUEST_METHOD="POST",
                           QUERY_STRING=mode, CONTENT_LENGTH=str(len(body)))
        assert body_of(frames) == b"%d %s\n" % (len(body), hashlib.sha256(body).hexdigest().encode())
    frames = w.request(body=BIG_BODY, inline=False, chunk=300000, REQUEST_METHOD="POST",
                       QUERY_STRING="none", CONTENT_LENGTH=str(len(BIG_BODY)))
    assert body_of(frames).startswith(b"0 ")  # unread: the next request starts clean
    frames = w.request(body=b"short", inline=False, chunk=300000, REQUEST_METHOD="POST",
                       QUERY_STRING=mode, CONTENT_LENGTH="5")
    assert body_of(frames) == b"5 %s\n" % hashlib.sha256(b"short").hexdigest().encode()
    w.close()


def test_body_loan(python):
    """BODY_LOAN, the worker's side (docs/protocol.md): with the socket lent,
    wsgi.input reads what the client has sent, hands the socket back with
    BODY_READ when a read would block (then asks CREDIT again), takes BODY
    frames as before, and at the end of a second loan that covers the rest
    of the body sends BODY_READ and no further CREDIT."""
    w = Worker(python, "worker_apps:echo").ready()
    body = BIG_BODY[:250000]
    client, lent = socket.socketpair()
    lent.setblocking(False)  # the master's sockets are non-blocking; the worker's copy shares that
    w.stream += 1
    stream = w.stream
    chan = w.chans[0]
    env = dict(BASE, REQUEST_METHOD="POST", QUERY_STRING="read70001", CONTENT_LENGTH=str(len(body)))
    w.dispatch(P.frame(P.REQUEST, stream, bytes((P.FLAG_HAS_BODY | P.FLAG_BODY_LOAN,)) + marshal.dumps(env)))

    def expect(ftype):
        got, fstream, payload = chan.read_frame()
        assert (P.NAMES.get(got, got), fstream) == (P.NAMES[ftype], stream)
        return payload

    expect(P.CREDIT)
    chan.send(P.frame(P.BODY, stream, body[:1000]))  # what the master had buffered
    expect(P.CREDIT)  # no CREDIT ahead under BODY_LOAN: this one is read at once
    client.sendall(body[1000:101000])
    socket.send_fds(w.socks[0], [P.frame(P.BODY_LOAN, stream, P.U64.pack(len(body) - 1000))], [lent.fileno()])
    assert P.U64.unpack(expect(P.BODY_READ)) == (100000,)  # all that was there, then it would block
    expect(P.CREDIT)
    inode = "socket:[%d]" % os.fstat(lent.fileno()).st_ino
    fds = "/proc/%d/fd" % w.proc.pid
    assert inode not in [os.readlink(os.path.join(fds, fd)) for fd in os.listdir(fds)]  # its copy is closed

    chan.send(P.frame(P.BODY, stream, body[101000:150000]))  # the master's path between loans
    expect(P.CREDIT)
    client.sendall(body[150000:] + b"GET /next")  # a request pipelined behind the body
    socket.send_fds(w.socks[0], [P.frame(P.BODY_LOAN, stream, P.U64.pack(len(body) - 150000))], [lent.fileno()])
    # the loan ends with the body: BODY_READ, then no CREDIT, and not a byte past it read
    assert P.U64.unpack(expect(P.BODY_READ)) == (len(body) - 150000,)
    out = []
    while True:
        ftype, fstream, payload = chan.read_frame()
        assert fstream == stream and ftype not in (P.CREDIT, P.BODY_READ)
        out.append((ftype, payload))
        if ftype in (P.END, P.ERROR):
            break
    assert body_of(out) == b"%d %s\n" % (len(body), hashlib.sha256(body).hexdigest().encode())
    assert lent.recv(100) == b"GET /next"
    w.close()


def test_read_without_size_and_eof_repeats(python):
    w = serve(python, "read_all")
    frames = w.request(body=BODY, inline=False, chunk=4096, REQUEST_METHOD="POST")
    assert body_of(frames) == b"%d %s 0" % (len(BODY), hashlib.sha256(BODY).hexdigest().encode())
    w.close()


def test_unread_inline_body_does_not_desync(python):
    w = serve(python, "echo")
    frames = w.request(body=b"x" * 100, REQUEST_METHOD="POST", QUERY_STRING="none", CONTENT_LENGTH="100")
    assert body_of(frames).startswith(b"0 ")
    assert body_of(w.request(QUERY_STRING="none")).startswith(b"0 ")
    w.close()


def test_body_fail_raises_in_the_app(python):
    w = Worker(python, "worker_apps:read_all").ready()
    w.stream += 1
    chan = w.chans[0]
    w.dispatch(P.frame(P.REQUEST, w.stream, bytes((P.FLAG_HAS_BODY,)) + marshal.dumps(dict(BASE, REQUEST_METHOD="POST"))))
    ftype, _, _ = chan.read_frame()
    assert ftype == P.CREDIT
    chan.send(P.frame(P.BODY_FAIL, w.stream, b"client went away"))
    ftype, _, payload = chan.read_frame()
    assert ftype == P.ERROR
    assert b"ClientDisconnected: client went away" in payload
    w.close()


def test_generator_streams_blocks_and_skips_empty_ones(python):
    w = serve(python, "stream")
    frames = w.request()
    assert types(frames) == ["START", "DATA", "DATA", "DATA", "END"]
    _, headers = start_of(frames)
    assert not any(h[0].lower() == "content-length" for h in headers)  # the master chunks it
    assert body_of(frames) == b"block 0\nblock 1\nblock 2\n"
    w.close()


def test_write_callable(python):
    w = serve(python, "write_callable")
    frames = w.request()
    assert types(frames)[0] == "START"
    assert body_of(frames) == b"written returned"
    w.close()


def test_exc_info_after_headers_reraises(python):
    w = serve(python, "error_after_headers")
    frames = w.request()
    assert types(frames) == ["START", "DATA", "ERROR"]
    assert b"boom after headers" in frames[-1][1]
    w.close()


def test_exc_info_before_headers_replaces_them(python):
    w = serve(python, "error_before_headers")
    frames = w.request()
    assert start_of(frames)[0] == "500 Internal Server Error"
    assert body_of(frames) == b"sorry"
    w.close()


@pytest.mark.parametrize("app,needle", [
    ("raises", b"KeyError: 'app bug'"),
    ("crlf_header", b"CR, LF or NUL"),
    ("hop_by_hop", b"hop-by-hop header 'Connection'"),
    ("bad_header_name", b"header name 'X Space' is not an HTTP token"),
    ("control_char", b"control character in the status or a header"),
])
def test_app_errors_become_error_frames(python, app, needle):
    w = serve(python, app)
    frames = w.request()
    assert types(frames) == ["ERROR"]
    assert needle in frames[0][1]
    assert b"Traceback" in frames[0][1]
    # the worker keeps serving
    assert types(w.request()) == ["ERROR"]
    w.close()


@pytest.mark.parametrize("fail", [False, True])
def test_close_is_always_called(python, fail):
    w = serve(python, "closing")
    frames = w.request(QUERY_STRING="fail" if fail else "")
    assert types(frames)[-1] == ("ERROR" if fail else "END")
    logs = [p for t, p in frames if t == P.LOG]
    if not logs:
        logs = [p for t, p in w.trailing_logs() if t == P.LOG]
    assert logs == [b"close called"]
    w.close()


def test_wsgi_errors_become_log_frames_by_line(python):
    w = serve(python, "errors_log")
    frames = w.request()
    assert [p for t, p in frames if t == P.LOG] == [b"first line", b"second line", b"tail"]
    w.close()


@pytest.mark.parametrize("ack", [1, 0], ids=["sendfile", "fallback"])
def test_file_wrapper_sends_the_descriptor(python, ack, tmp_path):
    data = os.urandom(100000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    w = serve(python, "file_wrapper")
    frames = w.request(QUERY_STRING="%s&1000" % path, file_ack=ack)
    assert types(frames)[:2] == ["START", "FILE"]
    _, headers = start_of(frames)
    assert ("Content-Length", str(len(data) - 1000)) in headers
    assert w.file_bytes == data[1000:]
    if ack:
        assert types(frames) == ["START", "FILE", "END"]
    else:
        assert body_of(frames) == data[1000:]
    w.close()


def test_head_keeps_content_length_sends_no_body(python):
    w = serve(python, "hello_raw")
    frames = w.request(REQUEST_METHOD="HEAD")
    assert types(frames) == ["START", "END"]
    assert ("Content-Length", "14") in start_of(frames)[1]
    w.close()


def test_204_sends_no_body(python):
    w = serve(python, "no_content")
    frames = w.request()
    assert types(frames) == ["START", "END"]
    assert start_of(frames)[0] == "204 No Content"
    w.close()


@pytest.mark.parametrize("spec,needle", [
    ("broken_app:app", "ImportError: this module is broken on purpose (at "),
    ("no_such_module:app", "ModuleNotFoundError: No module named 'no_such_module'"),
    ("worker_apps:missing", "module worker_apps has no attribute 'missing'"),
    ("worker_apps:not_callable", "worker_apps:not_callable is a int, not a WSGI callable"),
])
def test_load_error_is_reported_then_exit(python, spec, needle):
    w = Worker(python, spec)
    ftype, stream, payload = w.chans[0].read_frame()
    assert (ftype, stream) == (P.ERROR, 0)
    first = payload.decode().split("\n")[0]
    assert needle in first
    assert w.proc.wait(timeout=10) == 3
    w.close()


def test_closed_dispatch_socket_ends_the_worker(python):
    w = serve(python, "hello")
    w.disps[0].close()
    w.worker_disps[0].close()
    assert w.proc.wait(timeout=10) == 0
    w.close()


@pytest.mark.parametrize("message", [
    P.frame(P.START, 1, b"not for a worker"),  # a frame type travelling the wrong way
    P.frame(P.REQUEST, 1, b"\0" + marshal.dumps(BASE))[:-3],  # a REQUEST cut short
    P.frame(P.REQUEST, 1, b"\0" + marshal.dumps(BASE)) + P.frame(P.BODY, 1, b"x" * 10)[:-4],  # a body frame cut short
], ids=["wrong-type", "short-request", "short-body"])
def test_garbage_dispatch_message_ends_the_worker(python, message):
    w = serve(python, "hello")
    w.dispatch(message)
    assert w.proc.wait(timeout=10) == 70
    w.close()


def test_garbage_frame_on_the_stream_socket_ends_the_worker(python):
    """A REQUEST announced as coming on the stream socket, where the master
    wrote something else."""
    w = serve(python, "hello")
    w.chans[0].send(P.frame(P.START, 1, b"not for a worker"))
    w.dispatch(P.frame(P.REQUEST, 1, bytes((P.FLAG_ON_STREAM,))))
    assert w.proc.wait(timeout=10) == 70
    w.close()


def test_cancel_stops_an_endless_response(python):
    """The master sends CANCEL when the client is gone: the worker stops
    iterating, ends the stream and calls close()."""
    w = serve(python, "endless")
    w.stream += 1
    chan = w.chans[0]
    w.dispatch(P.frame(P.REQUEST, w.stream, b"\0" + marshal.dumps(BASE)))
    ftype, _, _ = chan.read_frame()
    assert ftype == P.START
    chan.send(P.frame(P.CONTROL_TO_WORKER, w.stream, bytes((P.CTL_CANCEL,))))
    seen = []
    while True:
        ftype, _, payload = chan.read_frame()
        seen.append(ftype)
        if ftype == P.END:
            break
        assert ftype == P.DATA
    ftype, _, payload = chan.read_frame()
    assert (ftype, payload) == (P.LOG, b"close called")
    # a stale cancel between requests is ignored, and the worker serves on
    chan.send(P.frame(P.CONTROL_TO_WORKER, w.stream, bytes((P.CTL_CANCEL,))))
    w.stream += 1
    w.dispatch(P.frame(P.REQUEST, w.stream, b"\0" + marshal.dumps(BASE)))
    assert chan.read_frame()[0] == P.START
    w.close()


def test_pipelined_request_waits_for_the_one_in_hand(python):
    """A REQUEST dispatched while the worker still reads the body of the
    previous stream waits for it; one written on the stream socket (too big
    for a dispatch message) is set aside meanwhile. Both are served in order."""
    w = serve(python, "echo")
    chan = w.chans[0]
    post = marshal.dumps(dict(BASE, REQUEST_METHOD="POST", QUERY_STRING="read7"))
    w.dispatch(P.frame(P.REQUEST, 1, bytes((P.FLAG_HAS_BODY,)) + post))
    ftype, stream, _ = chan.read_frame()
    assert (ftype, stream) == (P.CREDIT, 1)
    # streams 2 and 3 arrive before stream 1's body; 3 on the stream socket
    w.dispatch(P.frame(P.REQUEST, 2, bytes((P.FLAG_HAS_BODY | P.FLAG_BODY_INLINE,)) + post)
               + P.frame(P.BODY, 2, b"second") + P.frame(P.BODY_END, 2))
    chan.send(P.frame(P.REQUEST, 3, bytes((P.FLAG_HAS_BODY | P.FLAG_BODY_INLINE,)) + post)
              + P.frame(P.BODY, 3, b"third!!") + P.frame(P.BODY_END, 3))
    w.dispatch(P.frame(P.REQUEST, 3, bytes((P.FLAG_ON_STREAM,))))
    chan.send(P.frame(P.BODY, 1, b"first body"))
    seen = []
    while True:
        ftype, stream, payload = chan.read_frame()
        if ftype == P.CREDIT:
            chan.send(P.frame(P.BODY_END, stream))
            continue
        seen.append((P.NAMES[ftype], stream, payload))
        if ftype == P.END and stream == 3:
            break
    bodies = {s: p for t, s, p in seen if t == "DATA"}
    assert bodies[1].startswith(b"10 ")
    assert bodies[2].startswith(b"6 ")
    assert bodies[3].startswith(b"7 ")
    assert [s for t, s, _ in seen if t == "END"] == [1, 2, 3]
    w.close()


def test_a_request_not_yet_received_can_be_taken_back(python):
    """The master's withdraw: reading a pending message from the worker's
    end of the dispatch socket takes it whole, and the worker never sees it;
    it serves the request in hand, then the next one dispatched."""
    w = serve(python, "echo")
    chan = w.chans[0]
    post = marshal.dumps(dict(BASE, REQUEST_METHOD="POST", QUERY_STRING="read7"))
    w.dispatch(P.frame(P.REQUEST, 1, bytes((P.FLAG_HAS_BODY,)) + post))
    assert chan.read_frame()[:2] == (P.CREDIT, 1)  # the worker is inside stream 1
    w.dispatch(P.frame(P.REQUEST, 2, b"\0" + marshal.dumps(dict(BASE, QUERY_STRING="two"))))
    taken = w.worker_disps[0].recv(P.MAX_DISPATCH, socket.MSG_DONTWAIT)
    assert P.HEADER.unpack_from(taken) == (len(taken) - P.HEADER_SIZE, P.REQUEST, 2)
    chan.send(P.frame(P.BODY_END, 1))
    w.dispatch(P.frame(P.REQUEST, 3, b"\0" + marshal.dumps(dict(BASE, QUERY_STRING="three"))))
    streams = []
    while not streams or streams[-1] != (P.END, 3):
        ftype, stream, _ = chan.read_frame()
        if ftype == P.CREDIT:
            chan.send(P.frame(P.BODY_END, stream))
            continue
        streams.append((ftype, stream))
    assert [s for t, s in streams if t == P.END] == [1, 3]
    assert 2 not in [s for _, s in streams]
    w.close()


def wrote_of(frames):
    """(count, flags) of the WROTE frame."""
    (payload,) = [p for t, p in frames if t == P.WROTE]
    return P.U64.unpack(payload[:8])[0], payload[8]


def client_pair(sndbuf=None):
    """(the socket lent to the worker, the client's end). The lent one is
    non-blocking, as the Go master's sockets are, and the worker shares that."""
    lent, client = socket.socketpair()
    if sndbuf:
        lent.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    lent.setblocking(False)
    return lent, client


def read_exactly(sock, n):
    sock.settimeout(10)
    out = bytearray()
    while len(out) < n:
        piece = sock.recv(n - len(out))
        if not piece:
            break
        out += piece
    return bytes(out)


def test_direct_body_goes_to_the_lent_socket(python):
    w = serve(python, "big")
    lent, client = client_pair(sndbuf=1 << 20)
    size = 600000  # fits in the socketpair's buffers: written at once
    frames = w.request(direct=lent, QUERY_STRING=str(size))
    assert types(frames) == ["START", "DIRECT", "WROTE", "END"]
    assert P.U64.unpack([p for t, p in frames if t == P.DIRECT][0]) == (size,)
    assert wrote_of(frames) == (size, 0)
    assert ("Content-Length", str(size)) in start_of(frames)[1]
    assert read_exactly(client, size) == bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    # the worker kept no copy of the socket: closing ours ends the client's stream
    lent.close()
    assert client.recv(1) == b""
    w.close()


def test_direct_refused_sends_data(python):
    w = serve(python, "big")
    frames = w.request(direct=False, QUERY_STRING="600000")
    assert types(frames)[:2] == ["START", "DIRECT"] and "WROTE" not in types(frames)
    assert body_of(frames) == bytes(range(256)) * (600000 // 256) + bytes(range(600000 % 256))
    w.close()


def test_direct_rest_that_would_block_comes_as_data(python):
    w = serve(python, "big")
    lent, client = client_pair(sndbuf=4096)
    size = 4 << 20  # far more than the lent socket takes without a reader
    frames = w.request(direct=lent, QUERY_STRING=str(size))
    wrote, flags = wrote_of(frames)
    assert flags == 0 and 0 <= wrote < size
    rest = body_of(frames)
    assert len(rest) == size - wrote
    expected = (bytes(range(256)) * (size // 256 + 1))[:size]
    assert read_exactly(client, wrote) + rest == expected
    w.close()


def test_direct_to_a_gone_client_reports_it(python):
    w = serve(python, "big")
    lent, client = client_pair()
    client.close()
    frames = w.request(direct=lent, QUERY_STRING="600000")
    assert types(frames) == ["START", "DIRECT", "WROTE", "END"]
    assert wrote_of(frames)[1] == P.WROTE_CLIENT_FAILED
    assert w.request(QUERY_STRING="10")[-1][0] == P.END  # the worker stays in service
    w.close()


def test_small_and_head_bodies_never_ask(python):
    w = serve(python, "big")
    frames = w.request(direct=False, QUERY_STRING=str(500 * 1024))
    assert "DIRECT" not in types(frames) and len(body_of(frames)) == 500 * 1024
    frames = w.request(direct=False, QUERY_STRING="600000", REQUEST_METHOD="HEAD")
    assert types(frames) == ["START", "END"]
    w.close()
