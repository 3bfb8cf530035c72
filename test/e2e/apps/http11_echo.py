"""The master's side of the HTTP/1.1 differential test
(test/e2e/http11_differential_test.go): answers 200 with the CGI part of the
environ the master built (every str item but the wsgi.* ones, and
wsgi.url_scheme) and the request body, as base64 JSON in an X-Echo header,
so a HEAD request carries it too. A request with an X-Http11-Respond header
gets instead the response its JSON body describes: {"status", "headers":
[[name, value], ...], "body": [block, ...]} (str, latin-1)."""
import base64
import json


def app(environ, start_response):
    cgi = {k: v for k, v in environ.items()
           if type(v) is str and (not k.startswith("wsgi.") or k == "wsgi.url_scheme")}
    body = environ["wsgi.input"].read()
    if "HTTP_X_HTTP11_RESPOND" in environ:
        spec = json.loads(body)
        start_response(spec["status"], [(n, v) for n, v in spec["headers"]])
        return [block.encode("latin-1") for block in spec["body"]]
    echo = json.dumps({"environ": cgi, "body": body.decode("latin-1")})
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0"),
                              ("X-Echo", base64.b64encode(echo.encode("utf-8")).decode("ascii"))])
    return [b""]
