"""The worker's side of the HTTP/1.1 differential test
(test/e2e/http11_differential_test.go): reads JSON cases from stdin and
prints one JSON result per case.

{"raw": base64, "conn": {...}, "max_head": N, "prefixes": bool}:
wsgate.http11.parse over the raw request at position 0 → {"verdict":
"accept" | "NEED_MORE" | "DEFER", "environ", "body" (latin-1), "end", and with
"prefixes" the lengths of the shorter reads of an accepted request that do
not answer NEED_MORE}.

{"response": {"status", "headers", "body": [block, ...]}}: the response the
worker writes for it (respond()) →
{"response": base64}."""
import base64
import json
import sys

from wsgate import http11

# Arguments go by position below: that is how the lending loop calls parse()
# and response_head(), and the C speedups (wsgate._speedups) take the plain
# case only then. The test runs once with them (when built) and once with
# WSGATE_NO_SPEEDUPS=1 (make test-no-speedups): each is held to the master.


def respond(status, headers, body):
    """The response as a lending loop writes it: no body for 204 and 304,
    the application's Content-Length if valid, the length of a body of one
    block, else chunked."""
    headers = [tuple(h) for h in headers]
    blocks = [block.encode("latin-1") for block in body]
    if http11.no_body(status):
        return http11.response_head(status, headers)
    if http11.app_length(headers) is not None or len(blocks) == 1:
        return http11.response_head(status, headers, len(b"".join(blocks))) + b"".join(blocks)
    return (http11.response_head(status, headers, None, True)
            + b"".join(http11.chunk(block) for block in blocks) + http11.LAST_CHUNK)


def main():
    out = []
    for case in json.load(sys.stdin):
        if "response" in case:
            out.append({"response": base64.b64encode(respond(**case["response"])).decode("ascii")})
            continue
        raw = base64.b64decode(case["raw"])
        r = http11.parse(bytearray(raw), 0, case["conn"], case["max_head"])
        if isinstance(r, tuple):
            environ, body, end = r
            out.append({"verdict": "accept", "environ": environ, "body": body.decode("latin-1"), "end": end})
            if case.get("prefixes"):
                # Every shorter read of an accepted request waits for more.
                out[-1]["prefixes"] = [
                    i for i in range(end)
                    if http11.parse(bytearray(raw[:i]), 0, case["conn"], case["max_head"]) is not http11.NEED_MORE
                ]
        else:
            out.append({"verdict": r})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
