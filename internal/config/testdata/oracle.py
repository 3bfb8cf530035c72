"""The two Python halves of config's differential test.

    python oracle.py paste   < cases.json   # the real PasteDeploy
    python oracle.py wsgate  < cases.json   # wsgate.loader on the worker form

cases.json is a list of {"id", "file", "name", "object_type", "global_conf",
"path", "worker"}. For each case, `paste` runs paste.deploy.loadwsgi.loadcontext and
dumps the context tree in the shape of `wsgate check --json` (without "use"
and "source", which PasteDeploy does not know), then creates the application
and calls it once; `wsgate` builds the application from the worker form with
wsgate.loader.load and calls it once. The Go test compares the trees and the
responses. The fake factories (testdata/fakepkgs) answer with a JSON
description of the app, its configuration and the filters passed through.
"""

import json
import sys
import types


def factory_name(obj):
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return "%s:%s" % (obj.__module__, obj.__qualname__)


def take_wsgate_keys(ctx):
    """wsgate's one departure from PasteDeploy, applied to its contexts:
    an option named wsgate.* is wsgate's (how it serves the application,
    docs/config.md), so it leaves local_conf — the factory never receives
    it — and `check --json` shows it under "wsgate", prefix removed.
    (Applications a composite loads while being created are not walked:
    PasteDeploy loads them inside create().)"""
    from paste.deploy.loadwsgi import FILTER_APP, FILTER_WITH, PIPELINE

    ctx.wsgate_keys = {}
    for key in list(ctx.local_conf):
        if key.startswith("wsgate."):
            ctx.wsgate_keys[key[len("wsgate."):]] = ctx.local_conf.pop(key)
    children = []
    if ctx.object_type is PIPELINE:
        children = list(ctx.filter_contexts) + [ctx.app_context]
    if ctx.object_type in (FILTER_APP, FILTER_WITH):
        children = [ctx.filter_context, ctx.next_context]
    for child in children:
        take_wsgate_keys(child)


def dump(ctx, keep_here=False):
    """The context tree in the shape of `wsgate check --json` (keep_here:
    the worker form's global_conf, with here and __file__)."""
    from paste.deploy.loadwsgi import FILTER_APP, FILTER_WITH, PIPELINE

    out = {"object_type": ctx.object_type.name, "protocol": ctx.protocol}
    if ctx.object is not None:
        out["factory"] = factory_name(ctx.object)
    hidden = () if keep_here else ("here", "__file__")
    out["global_conf"] = {k: v for k, v in ctx.global_conf.items() if k not in hidden}
    out["local_conf"] = dict(ctx.local_conf)
    if not keep_here and getattr(ctx, "wsgate_keys", None):
        out["wsgate"] = ctx.wsgate_keys
    if ctx.object_type is PIPELINE:
        out["filters"] = [dump(c, keep_here) for c in ctx.filter_contexts]
        out["app"] = dump(ctx.app_context, keep_here)
    if ctx.object_type in (FILTER_APP, FILTER_WITH):
        out["filter"] = dump(ctx.filter_context, keep_here)
        out["next"] = dump(ctx.next_context, keep_here)
    return out


def call(app, path):
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path or "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    body = b"".join(app(environ, start_response))
    return "%s %s" % (status[0] if status else "?", body.decode("utf-8", "replace"))


def error_line(exc):
    return "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")


def run_paste(case):
    from paste.deploy.loadwsgi import APP, FILTER, SERVER, loadcontext

    object_type = {"application": APP, "filter": FILTER, "server": SERVER}[case.get("object_type") or "application"]
    result = {"id": case["id"]}
    try:
        ctx = loadcontext(object_type, "config:" + case["file"], name=case["name"], global_conf=case.get("global_conf") or None)
    except Exception as exc:
        result["error"] = error_line(exc)
        return result
    take_wsgate_keys(ctx)
    result["tree"] = dump(ctx)
    result["worker_tree"] = dump(ctx, keep_here=True)
    if object_type is not APP:
        return result
    try:
        result["response"] = call(ctx.create(), case.get("path"))
    except Exception as exc:
        result["response_error"] = error_line(exc)
    return result


def run_wsgate(case):
    from wsgate import loader

    result = {"id": case["id"]}
    try:
        result["response"] = call(loader.load(case["worker"]), case.get("path"))
    except Exception as exc:
        result["response_error"] = error_line(exc)
    return result


def main():
    cases = json.load(sys.stdin)
    run = {"paste": run_paste, "wsgate": run_wsgate}[sys.argv[1]]
    out = sys.stdout
    sys.stdout = sys.stderr
    results = [run(c) for c in cases]
    json.dump(results, out)
    out.write("\n")


if __name__ == "__main__":
    main()
