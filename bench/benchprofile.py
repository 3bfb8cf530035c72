"""A WSGI wrapper that runs cProfile inside a server's worker (used by `bench/run.py --profile`).

`benchprofile:app` serves the application named by $BENCH_PROFILE_TARGET (module:callable). The profiler is
switched on at the first request, in the thread that serves it, so it records the server's own per-request
code around the application (the worker loop, environ decoding, response framing) as well as the application.
GET /__cprofile/dump writes this worker's statistics to $BENCH_PROFILE_DIR/worker-<pid>.prof and carries on.
"""

import cProfile
import importlib
import os

_module, _, _name = os.environ["BENCH_PROFILE_TARGET"].partition(":")
_target = getattr(importlib.import_module(_module), _name or "application")
_out_dir = os.environ["BENCH_PROFILE_DIR"]
_profiler = None


def _dump():
    path = os.path.join(_out_dir, "worker-%d.prof" % os.getpid())
    _profiler.disable()
    _profiler.dump_stats(path)
    _profiler.enable()
    return path


def app(environ, start_response):
    global _profiler
    if _profiler is None:
        _profiler = cProfile.Profile()
        _profiler.enable()
    if environ.get("PATH_INFO") == "/__cprofile/dump":
        body = _dump().encode() + b"\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return _target(environ, start_response)
