"""An application that answers with where it was mounted, for the urlmap
differential test (test/e2e/urlmap_test.go): its name, SCRIPT_NAME and
PATH_INFO as JSON."""
import json


def make_app(global_conf, name="echo", **local_conf):
    def app(environ, start_response):
        body = json.dumps(
            {"app": name, "SCRIPT_NAME": environ["SCRIPT_NAME"], "PATH_INFO": environ["PATH_INFO"]}
        ).encode("ascii")
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app
