"""Runs a Django application factory in a fresh interpreter (Django has one
settings object per process) and reports what it produced as JSON.

run(...) builds the application one of three ways:
  paste=URI      Python's PasteDeploy loadapp(URI): egg:twod.wsgi and
                 egg:wsgate#django resolve to wsgate's factories (dists/),
                 egg:django-pastedeploy-settings to the real package;
  factory=SPEC + uri=URI   PasteDeploy's appconfig(URI) gives global_conf and
                 local_conf, then SPEC ("module:function") is called with them;
  factory=SPEC + global_conf/local_conf dicts.
then runs `body` (Python code that may use `app` and `emit(key, value)`).

The interpreter is the one running the tests, or DJHARNESS_PYTHON (e.g. a
CPython 3.9 virtualenv with Django 4.2, to prove wsgate.django runs there).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJ = os.path.join(HERE, "proj")
INI = os.path.join(HERE, "ini")
DISTS = os.path.join(HERE, "dists")
RUNTIME = os.path.dirname(os.path.dirname(HERE))  # python/: holds wsgate/

_PRELUDE = r'''
import json, logging, os, sys, ast
spec = json.loads(os.environ["DJHARNESS_SPEC"])
results = {"warnings": []}

class _Collect(logging.Handler):
    def emit(self, record):
        results["warnings"].append(record.getMessage())

for name in ("wsgate.django", "django_pastedeploy_settings"):
    logging.getLogger(name).addHandler(_Collect())
    logging.getLogger(name).propagate = False

def emit(key, value):
    results[key] = value

def module_settings():
    module = sys.modules[os.environ["DJANGO_SETTINGS_MODULE"]]
    return {n: repr(getattr(module, n)) for n in dir(module) if n.isupper() or n == "paste_configuration_file"}

try:
    if spec.get("paste"):
        from paste.deploy import loadapp
        app = loadapp(spec["paste"])
    else:
        module_name, _, func = spec["factory"].partition(":")
        import importlib
        factory = getattr(importlib.import_module(module_name), func)
        if spec.get("uri"):
            from paste.deploy import appconfig
            conf = appconfig(spec["uri"])
            global_conf, local_conf = dict(conf.global_conf), dict(conf.local_conf)
        else:
            global_conf, local_conf = spec["global_conf"], spec["local_conf"]
        app = factory(global_conf, **local_conf)
    results["ok"] = True
    results["app_class"] = type(app).__module__ + "." + type(app).__name__
    results["module"] = module_settings()
except Exception as exc:
    results["ok"] = False
    results["error"] = str(exc)
    results["error_type"] = type(exc).__name__
    results["config_error"] = bool(getattr(exc, "wsgate_config_error", False))
    import traceback
    results["traceback"] = traceback.format_exc()
if results["ok"]:
'''

_EPILOGUE = r'''
print("DJHARNESS" + json.dumps(results, default=repr))
'''


def run(body="pass", paste=None, factory=None, uri=None, global_conf=None, local_conf=None,
        python=None, env=None, cwd=None):
    spec = {"paste": paste, "factory": factory, "uri": uri,
            "global_conf": global_conf or {}, "local_conf": local_conf or {}}
    script = _PRELUDE + "".join("    " + line + "\n" for line in body.strip().splitlines()) + _EPILOGUE
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["DJHARNESS_SPEC"] = json.dumps(spec)
    full_env["PYTHONPATH"] = os.pathsep.join([RUNTIME, PROJ, DISTS])
    full_env.pop("DJANGO_SETTINGS_MODULE", None)
    python = python or os.environ.get("DJHARNESS_PYTHON") or sys.executable
    proc = subprocess.run([python, "-c", script], env=full_env, cwd=cwd or PROJ,
                          capture_output=True, text=True, timeout=120)
    for line in proc.stdout.splitlines():
        if line.startswith("DJHARNESS"):
            return json.loads(line[len("DJHARNESS"):])
    raise AssertionError("harness produced no result (exit %d)\nstdout:\n%s\nstderr:\n%s"
                         % (proc.returncode, proc.stdout, proc.stderr))


def ini(name):
    return os.path.join(INI, name)


def line_of(path, needle):
    """The 1-based number of the first line of path starting with needle."""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.startswith(needle):
                return number
    raise AssertionError("%s not in %s" % (needle, path))


def write(tmp_path, name, text):
    """Write text (leading blank lines dropped) to tmp_path/name; its path."""
    path = tmp_path / name
    path.write_text(text.lstrip())
    return str(path)
