"""The worker's side of the protocol against the golden vectors that the Go
tests check too (internal/protocol/testdata/vectors.json)."""

import base64
import json
import marshal
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from wsgate import protocol as P  # noqa: E402

VECTORS = os.path.join(HERE, "..", "..", "internal", "protocol", "testdata", "vectors.json")

with open(VECTORS) as f:
    GOLDEN = json.load(f)["vectors"]


def frame_bytes(v):
    return bytes.fromhex(v["hex"])


@pytest.mark.parametrize("v", GOLDEN, ids=[v["name"] for v in GOLDEN])
def test_decode_golden_frame(v):
    [(ftype, stream, payload)] = P.decode_frames(frame_bytes(v))
    assert ftype == v["type"]
    assert stream == v["stream"]
    if "environ" in v:
        assert payload[0] == v["flags"]
        environ = marshal.loads(payload[1:])
        assert list(environ.items()) == [tuple(kv) for kv in v["environ"]]
    elif "status" in v:
        status, headers = P.decode_start(payload)
        assert status == v["status"]
        assert headers == [tuple(h) for h in v.get("headers") or []]
    elif "text" in v:
        assert payload.decode("utf-8") == v["text"]
    elif "file" in v:
        f = v["file"]
        assert P.FILE_PAYLOAD.unpack(payload) == (f["FD"], f["Offset"], f["Count"])
    elif "credit" in v:
        assert P.U32.unpack(payload) == (v["credit"],)
    elif "control" in v:
        assert payload == base64.b64decode(v["control"])


# REQUEST is encoded by the master (marshal from Go); its decoding is checked above.
WORKER_ENCODED = [v for v in GOLDEN if "environ" not in v]


@pytest.mark.parametrize("v", WORKER_ENCODED, ids=[v["name"] for v in WORKER_ENCODED])
def test_encode_golden_frame(v):
    """What the worker sends is byte for byte the golden frame."""
    if "status" in v:
        payload = P.encode_start(v["status"], [tuple(h) for h in v.get("headers") or []])
    elif "text" in v:
        payload = v["text"].encode("utf-8")
    elif "file" in v:
        f = v["file"]
        payload = P.FILE_PAYLOAD.pack(f["FD"], f["Offset"], f["Count"])
    elif "credit" in v:
        payload = P.U32.pack(v["credit"])
    elif "control" in v:
        payload = base64.b64decode(v["control"])
    else:
        payload = b""
    assert P.frame(v["type"], v["stream"], payload) == frame_bytes(v)


def test_constants_match_the_go_side():
    by_name = {v["name"]: v["type"] for v in GOLDEN}
    expected = {
        "start": P.START, "data": P.DATA, "file": P.FILE, "end": P.END, "error": P.ERROR, "log": P.LOG,
        "credit": P.CREDIT, "body": P.BODY, "body end": P.BODY_END, "body fail": P.BODY_FAIL,
        "file ack": P.FILE_ACK, "ready": P.CONTROL_FROM_WORKER, "stop": P.CONTROL_TO_WORKER,
    }
    assert {name: by_name[name] for name in expected} == expected


@pytest.mark.parametrize("status,headers", [
    ("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")]),
    ("200 OK", [("X-Bad\n", "v")]),
    ("200 OK\r\n", []),
    ("200 OK", [("X-Nul", "a\0b")]),
])
def test_encode_start_refuses_cr_lf_nul(status, headers):
    with pytest.raises(ValueError):
        P.encode_start(status, headers)


def test_encode_start_refuses_non_latin1():
    with pytest.raises(UnicodeEncodeError):
        P.encode_start("200 OK", [("X-Snow", "\u2603")])


def test_decode_frames_rejects_truncated_input():
    data = P.frame(P.DATA, 1, b"hello")
    with pytest.raises(P.ProtocolError):
        P.decode_frames(data[:-1])
    with pytest.raises(P.ProtocolError):
        P.decode_frames(data[:5])


def test_sendv_sends_more_parts_than_iov_max():
    import socket
    import threading
    a, b = socket.socketpair()
    parts = [bytes([i % 251]) * 1000 for i in range(3000)]
    got = bytearray()

    def read():
        while len(got) < 3000 * 1000:
            got.extend(b.recv(1 << 20))

    t = threading.Thread(target=read)
    t.start()
    P.Channel(a).sendv(list(parts))
    t.join(10)
    assert bytes(got) == b"".join(parts)
    a.close()
    b.close()
