"""The worker's side of the wsgate wire protocol (docs/protocol.md).

Frames are ``u32 length · u8 type · u32 stream · payload`` (big-endian); the
length counts the payload only. This module holds the constants, the frame
encoder and a buffered frame reader for one socket. Standard library only.
"""

import array
import mmap
import os
import socket
import struct

_DONTWAIT = socket.MSG_DONTWAIT

HEADER = struct.Struct(">IBI")
HEADER_SIZE = HEADER.size  # 9
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
FILE_PAYLOAD = struct.Struct(">IQQ")

MAX_PAYLOAD = 16 << 20
INITIAL_WINDOW = 64 << 10
# DATA frames larger than this are split, so the master never sees one
# frame bigger than it has to.
MAX_DATA_FRAME = 1 << 20

# master -> worker
REQUEST = 1
BODY = 2
BODY_END = 3
FILE_ACK = 4
BODY_FAIL = 5
DIRECT_ACK = 6
BODY_LOAN = 7
CONTROL_TO_WORKER = 9
# worker -> master
START = 16
DATA = 17
FILE = 18
END = 19
ERROR = 20
LOG = 21
CREDIT = 22
CONTROL_FROM_WORKER = 23
STDERR = 24
DIRECT = 25
WROTE = 26
BODY_READ = 27
LENT = 28  # the worker has the connection of a FLAG_LEND request (stream socket)
RETURN = 29  # lend socket: u8 flags, then the unserved bytes read from the client
OUTPUT = 30  # lend socket: response bytes the client's socket could not take at once
OWED = 31  # lend socket: u8 1 = part of a response written, the rest follows as the client reads; 0 = all written

# REQUEST flags (first payload byte)
FLAG_HAS_BODY = 1
FLAG_BODY_INLINE = 2
FLAG_ON_STREAM = 4  # dispatch marker: the REQUEST frame follows on the stream socket
FLAG_DIRECT = 8  # the worker may ask to write a large response body to the client itself
FLAG_BODY_LOAN = 16  # a CREDIT may be answered with BODY_LOAN (the client's socket attached)
FLAG_LEND = 32  # the client's socket rides along: answer LENT, then serve the connection
RETURN_CLOSE = 1  # RETURN flags: close the connection once its output is written
RETURN_OUTPUT = 2  # OUTPUT frames follow, then a RETURN that ends them
RETURN_KEEP = 4  # the master serves the connection from now on: it is not lent again
# WROTE flags
WROTE_CLIENT_FAILED = 1
# one dispatch message (a REQUEST frame and its inline body) is at most this long
MAX_DISPATCH = 256 << 10

# control kinds (first payload byte of a CONTROL frame)
CTL_READY = 1
CTL_STOP = 2
CTL_CANCEL = 3
CTL_RETURN_ALL = 4  # dispatch socket: hand every lent connection back, keep none from now on

NAMES = {
    REQUEST: "REQUEST", BODY: "BODY", BODY_END: "BODY_END", FILE_ACK: "FILE_ACK", BODY_FAIL: "BODY_FAIL",
    DIRECT_ACK: "DIRECT_ACK", BODY_LOAN: "BODY_LOAN", CONTROL_TO_WORKER: "CONTROL", START: "START", DATA: "DATA", FILE: "FILE",
    END: "END", ERROR: "ERROR", LOG: "LOG", CREDIT: "CREDIT", CONTROL_FROM_WORKER: "CONTROL",
    STDERR: "STDERR", DIRECT: "DIRECT", WROTE: "WROTE", BODY_READ: "BODY_READ",
    LENT: "LENT", RETURN: "RETURN", OUTPUT: "OUTPUT", OWED: "OWED",
}

# room for the one descriptor a DIRECT_ACK carries (and a few more, to be closed)
_FD_SPACE = socket.CMSG_SPACE(4 * array.array("i").itemsize)


class ProtocolError(Exception):
    """The master sent something this worker cannot make sense of."""


def frame(ftype, stream, payload=b""):
    """One encoded frame."""
    return HEADER.pack(len(payload), ftype, stream) + payload


def encode_start(status, headers):
    """The START payload: status NUL name NUL value … in latin-1.

    Raises ValueError for what PEP 3333 forbids a server to send: CR, LF or
    NUL inside the status or a header, or a status that is not "NNN reason".
    """
    parts = [status]
    for name, value in headers:
        parts.append(name)
        parts.append(value)
    text = "\0".join(parts)
    if "\r" in text or "\n" in text or text.count("\0") != 2 * len(headers):
        raise ValueError("CR, LF or NUL in the status or a header: %r" % ([status] + list(headers),))
    return text.encode("latin-1")


def decode_start(payload):
    """(status, [(name, value), …]) from a START payload (used by tests)."""
    parts = payload.decode("latin-1").split("\0")
    return parts[0], [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def decode_frames(data):
    """[(type, stream, payload), …] from a byte string holding whole frames."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < HEADER_SIZE:
            raise ProtocolError("%d trailing bytes, short of a header" % (len(data) - pos))
        length, ftype, stream = HEADER.unpack_from(data, pos)
        pos += HEADER_SIZE
        if length > MAX_PAYLOAD or pos + length > len(data):
            raise ProtocolError("frame of %d bytes does not fit" % length)
        out.append((ftype, stream, bytes(data[pos:pos + length])))
        pos += length
    return out


class Channel:
    """One worker thread's two sockets: a buffered frame reader and writer on
    the stream socket, and the dispatch socket (SOCK_SEQPACKET) on which each
    REQUEST arrives as one message.

    Reads go into preallocated buffers with recv_into, so a request costs
    one recv and no allocation of a fresh receive buffer.
    """

    __slots__ = ("sock", "buf", "view", "start", "end", "send", "recv_into", "pending", "disp_recv_into",
                 "dbuf", "dview", "fds", "inbuf", "disp")

    def __init__(self, sock, disp=None, size=256 * 1024):
        self.sock = sock
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.start = 0  # first unread byte
        self.end = 0  # end of the received bytes
        self.send = sock.sendall
        self.recv_into = sock.recv_into
        # Frames of a later request that came on the stream socket while the
        # current one read its own (a REQUEST too big for a dispatch message
        # is written there), and the inline body of the next request.
        self.pending = []
        self.fds = None  # descriptors received while read_for_fds reads
        # wsgi.input's buffer (worker.Input), kept from one request to the
        # next so that a body's frames are received into memory already
        # mapped instead of a fresh megabyte each
        self.inbuf = bytearray()
        self.disp = disp
        if disp is not None:
            self.disp_recv_into = disp.recv_into
            # anonymous memory: pages are only taken as messages use them
            self.dbuf = mmap.mmap(-1, MAX_DISPATCH)
            self.dview = memoryview(self.dbuf)

    def next_request(self):
        """(stream, payload) of the next REQUEST: one dispatch message.
        payload (flags byte, marshal environ) is valid until the next call;
        the request's inline body frames are set aside for read_for."""
        return self._request(self.disp_recv_into(self.dview))

    def next_request_fds(self, disp):
        """next_request(), receiving with recvmsg on disp (this channel's
        dispatch socket) so that a descriptor sent along is kept:
        (stream, payload, [fd, …])."""
        n, ancdata, _flags, _addr = disp.recvmsg_into([self.dview], _FD_SPACE)
        fds = []
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(data[:len(data) - len(data) % got.itemsize])
                fds.extend(got)
        try:
            stream, payload = self._request(n)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return stream, payload, fds

    def _request(self, n):
        if not n:
            raise EOFError
        dbuf = self.dbuf
        if n >= HEADER_SIZE + 1 and dbuf[4] == CONTROL_TO_WORKER:
            # a control on the dispatch socket (CTL_RETURN_ALL): stream 0
            length = HEADER.unpack_from(dbuf, 0)[0]
            return 0, self.dview[HEADER_SIZE:HEADER_SIZE + length]
        length, ftype, stream = HEADER.unpack_from(dbuf, 0)
        end = HEADER_SIZE + length
        if ftype != REQUEST or end > n or length < 1:
            raise ProtocolError("dispatch message of %d bytes is not a REQUEST" % n)
        if length == 1 and dbuf[HEADER_SIZE] & FLAG_ON_STREAM:
            # too big for a message: the REQUEST frame is on the stream socket
            ftype, fstream, payload = self.next_frame()
            while ftype == CONTROL_TO_WORKER:  # a late CANCEL of an ended stream
                ftype, fstream, payload = self.next_frame()
            if ftype != REQUEST or fstream != stream:
                raise ProtocolError("expected REQUEST %d on the stream socket, got %s %d"
                                    % (stream, NAMES.get(ftype, ftype), fstream))
            return stream, payload
        pos = end
        while pos < n:  # the inline body: BODY… BODY_END
            flen, ftype, fstream = HEADER.unpack_from(dbuf, pos)
            fend = pos + HEADER_SIZE + flen
            if fend > n:
                raise ProtocolError("frame overruns its dispatch message")
            self.pending.append((ftype, fstream, bytearray(dbuf[pos + HEADER_SIZE:fend])))
            pos = fend
        return stream, self.dview[HEADER_SIZE:end]

    def _fill(self, need):
        """Make at least `need` unread bytes available."""
        buf = self.buf
        have = self.end - self.start
        if self.start:
            buf[:have] = buf[self.start:self.end]
            self.start, self.end = 0, have
        if need > len(buf):
            self.view.release()
            self.buf = buf = buf + bytearray(need - len(buf))
            self.view = memoryview(buf)
        view = self.view
        recv_into = self.recv_into
        while self.end < need:
            n = recv_into(view[self.end:])
            if not n:
                if self.end:
                    raise ProtocolError("connection closed inside a frame")
                raise EOFError
            self.end += n

    def next_frame(self):
        """The next frame between requests: set-aside frames first."""
        if self.pending:
            return self.pending.pop(0)
        return self.read_frame()

    def read_for(self, stream):
        """The next frame of this stream, setting aside the frames of
        requests pipelined behind it and dropping stale controls."""
        pending = self.pending
        for i, frame in enumerate(pending):
            if frame[1] == stream:
                return pending.pop(i)
        while True:
            frame = self.read_frame()
            if frame[1] == stream:
                return frame
            if frame[0] != CONTROL_TO_WORKER:
                pending.append(frame)
            # a control for another stream: a late CANCEL, dropped

    def read_for_into(self, stream, buf, at):
        """read_for(stream), the payload written into the bytearray buf at
        offset `at` (buf grows to fit; what it held from `at` on is lost)
        instead of a buffer of its own: (type, length). A large payload goes
        from the socket straight into buf."""
        pending = self.pending
        for i, frame in enumerate(pending):
            if frame[1] == stream:
                ftype, _stream, payload = pending.pop(i)
                buf[at:] = payload
                return ftype, len(payload)
        while True:
            if self.end - self.start < HEADER_SIZE:
                self._fill(HEADER_SIZE)
            length, ftype, fstream = HEADER.unpack_from(self.buf, self.start)
            if fstream == stream:
                break
            frame = self.read_frame()
            if frame[0] != CONTROL_TO_WORKER:
                pending.append(frame)
            # a control for another stream: a late CANCEL, dropped
        if length > MAX_PAYLOAD:
            raise ProtocolError("frame of %d bytes" % length)
        if length < 65536 and self.end - self.start < HEADER_SIZE + length:
            self._fill(HEADER_SIZE + length)  # small: one recv may bring the frames after it too
        need = at + length
        if len(buf) < need:
            buf += bytes(need - len(buf))
        begin = self.start + HEADER_SIZE
        have = min(self.end - begin, length)
        with memoryview(buf) as view:
            view[at:at + have] = self.view[begin:begin + have]
            recv_into = self.recv_into
            while have < length:
                n = recv_into(view[at + have:need])
                if not n:
                    raise ProtocolError("connection closed inside a frame")
                have += n
        self.start = begin + length
        if self.start >= self.end:
            self.start = self.end = 0
        return ftype, length

    def read_for_fds(self, stream, buf=None, at=0):
        """read_for(stream), receiving with recvmsg so that descriptors sent
        along (SCM_RIGHTS) are kept rather than dropped by the kernel:
        ((type, stream, payload), [fd, …]); with buf, read_for_into(stream,
        buf, at) likewise: ((type, length), [fd, …]). Bytes already buffered
        were received before the question this answers, so they carry none."""
        self.fds = []
        self.recv_into = self._recv_into_fds
        try:
            frame = self.read_for(stream) if buf is None else self.read_for_into(stream, buf, at)
        finally:
            self.recv_into = self.sock.recv_into
            fds, self.fds = self.fds, None
        return frame, fds

    def _recv_into_fds(self, view):
        n, ancdata, _flags, _addr = self.sock.recvmsg_into([view], _FD_SPACE)
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                self.fds.extend(fds)
        return n

    def _read_large(self, start, length):
        """A payload that does not fit: received straight into its own
        buffer rather than through this one."""
        payload = bytearray(length)
        have = self.end - start - HEADER_SIZE
        payload[:have] = self.buf[start + HEADER_SIZE:self.end]
        self.start = self.end = 0
        recv_into = self.recv_into
        with memoryview(payload) as view:
            while have < length:
                n = recv_into(view[have:])
                if not n:
                    raise ProtocolError("connection closed inside a frame")
                have += n
        return payload

    def poll_control(self, stream, kind):
        """Without blocking: whether a CONTROL frame of this kind for this
        stream is next in line (it is then consumed). Other frames stay."""
        if self.end == self.start:
            self.start = self.end = 0
        if self.end < len(self.buf):
            try:
                n = self.sock.recv_into(self.view[self.end:], 0, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                n = None
            if n == 0:
                raise EOFError
            if n:
                self.end += n
        while True:
            if self.end - self.start < HEADER_SIZE + 1:
                return False
            length, ftype, fstream = HEADER.unpack_from(self.buf, self.start)
            if ftype != CONTROL_TO_WORKER or fstream == stream or self.end - self.start < HEADER_SIZE + length:
                break
            self.start += HEADER_SIZE + length  # a late CANCEL of an ended stream: dropped
        if ftype != CONTROL_TO_WORKER or fstream != stream or length < 1:
            return False
        if self.buf[self.start + HEADER_SIZE] != kind[0] or self.end - self.start < HEADER_SIZE + length:
            return False
        self.start += HEADER_SIZE + length
        return True

    def sendv(self, parts):
        """Send a list of buffers with sendmsg (no joining copy)."""
        sendmsg = self.sock.sendmsg
        while parts:
            sent = sendmsg(parts[:512])  # IOV_MAX is 1024 on Linux
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if sent:
                parts[0] = memoryview(parts[0])[sent:]

    def buffered(self):
        """Whether bytes of a next frame are already buffered."""
        return self.end > self.start

    def read_frame(self):
        """(type, stream, payload) of the next frame; EOFError at a clean end."""
        if self.end - self.start < HEADER_SIZE:
            self._fill(HEADER_SIZE)
        start = self.start
        length, ftype, stream = HEADER.unpack_from(self.buf, start)
        if length > MAX_PAYLOAD:
            raise ProtocolError("frame of %d bytes" % length)
        if self.end - start < HEADER_SIZE + length:
            if length >= 65536:
                return ftype, stream, self._read_large(start, length)
            self._fill(HEADER_SIZE + length)
            start = 0
        begin = start + HEADER_SIZE
        payload = self.buf[begin:begin + length]
        start = begin + length
        if start == self.end:
            self.start = self.end = 0
        else:
            self.start = start
        return ftype, stream, payload
