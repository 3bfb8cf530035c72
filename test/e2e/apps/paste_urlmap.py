"""Serve requests through PasteDeploy and Paste's own urlmap, for the
urlmap differential test: reads [{"path", "host"}, …] as JSON on stdin,
loads argv[1] with paste.deploy.loadapp, calls the application once per
request with the environ a server would build (PATH_INFO percent-decoded to
latin-1), and prints [{"status", "body"}, …]. wsgate's own name for the
component, egg:wsgate#urlmap, is read as egg:Paste#urlmap (Python has no
wsgate distribution)."""
import json
import os
import sys
import tempfile
from urllib.parse import unquote

from paste.deploy import loadapp


def call(app, path, host):
    raw = path.split("?", 1)[0]
    hostname, _, port = host.partition(":")
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(raw, "latin-1"),
        "QUERY_STRING": "",
        "SERVER_NAME": hostname,
        "SERVER_PORT": port or "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "HTTP_ACCEPT": "text/plain",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    out = {}

    def start_response(status, headers, exc_info=None):
        out["status"] = int(status.split()[0])

    body = b"".join(app(environ, start_response))
    out["body"] = body.decode("latin-1")
    return out


def main():
    with open(sys.argv[1]) as f:
        text = f.read().replace("egg:wsgate#urlmap", "egg:Paste#urlmap")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, os.path.basename(sys.argv[1]))
        with open(path, "w") as f:
            f.write(text)
        app = loadapp("config:" + path)
    cases = json.load(sys.stdin)
    json.dump([call(app, c["path"], c["host"]) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
