"""The worker's side of the HTTP/1.1 differential test
(test/e2e/http11_differential_test.go): reads JSON cases from stdin,
{"raw": base64, "conn": {...}, "max_head": N}, runs wsgate.http11.parse over
each raw request at position 0, and prints one JSON result per case:
{"verdict": "accept" | "NEED_MORE" | "DEFER", "environ", "body" (latin-1),
"end"}."""
import base64
import json
import sys

from wsgate import http11


def main():
    out = []
    for case in json.load(sys.stdin):
        r = http11.parse(bytearray(base64.b64decode(case["raw"])), 0, case["conn"], max_head=case["max_head"])
        if isinstance(r, tuple):
            environ, body, end = r
            out.append({"verdict": "accept", "environ": environ, "body": body.decode("latin-1"), "end": end})
        else:
            out.append({"verdict": r})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
