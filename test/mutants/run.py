#!/usr/bin/env python3
"""make mutants: break each mechanism on purpose and check its tests notice.

Every entry of breaks.toml names a mechanism, one exact snippet of a file,
what to put in its place, and the tests that must fail once it is there.
The tracked files of the checkout (as they are on disk, uncommitted changes
included) are copied to a scratch directory once; there the named tests run
first on the unbroken tree (each must pass), then, for each break in turn,
the snippet is replaced, the binary rebuilt, each named test run (each must
fail) and the file put back.

A snippet that is not found exactly once is an error of the list, not a
pass: the code moved and the break must follow it.

    python3 test/mutants/run.py [--keep] [--only MECHANISM-or-ID ...]

Exit status: 0 when every break is caught, 1 when one is missed or a test
fails on the unbroken tree, 2 when the list is stale. Needs Python 3.11+
(tomllib), go, and the project's .venv (WSGATE_TEST_PYTHON).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEST_TIMEOUT = "8m"  # per test run; a hang is a failure of the harness, not a catch


def load(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    breaks = doc.get("break", [])
    for i, b in enumerate(breaks):
        for key in ("id", "mechanism", "file", "find", "replace", "tests"):
            if key not in b:
                sys.exit("%s: break #%d has no %r" % (path, i + 1, key))
        for t in b["tests"]:
            kind = t.split()[0]
            if kind not in ("go", "pytest") or len(t.split()) != 3:
                sys.exit("%s: break %s: test %r is not 'go PKG NAME' or 'pytest FILE NAME'" % (path, b["id"], t))
    return breaks


def copy_tree(dst):
    """The checkout's tracked files, as they are on disk, and the venv links."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for rel in files:
        if not rel:
            continue
        rel = rel.decode()
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree
        out = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(src, out, follow_symlinks=False)
    for link in (".venv", ".venv-dj42"):
        src = os.path.join(ROOT, link)
        if os.path.exists(src):
            os.symlink(os.path.realpath(src), os.path.join(dst, link))


def env_for(tree):
    env = dict(os.environ)
    env["WSGATE_BIN"] = os.path.join(tree, "bin", "wsgate")
    env.setdefault("WSGATE_TEST_PYTHON", os.path.join(ROOT, ".venv", "bin", "python"))
    env["WSGATE_TEST_STRICT"] = "1"
    return env


def build(tree, env):
    """The binary the e2e tests run, and every package (a break must compile)."""
    for cmd in (["go", "build", "-o", "bin/wsgate", "./cmd/wsgate"], ["go", "build", "./..."]):
        r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            return False, r.stdout + r.stderr
    return True, ""


def run_test(tree, env, spec):
    """(passed, seconds, output tail) of one named test."""
    kind, where, name = spec.split()
    if kind == "go":
        # NAME may be Test/Subtest: anchor each level.
        run = "/".join("^%s$" % part for part in name.split("/"))
        cmd = ["go", "test", "-count=1", "-v", "-timeout", TEST_TIMEOUT, "-run", run, where]
        cwd = tree
    else:
        cmd = [env["WSGATE_TEST_PYTHON"], "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", where, "-k", name]
        cwd = os.path.join(tree, "python")
    began = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, errors="replace")  # tests may print raw bytes
    out = r.stdout + r.stderr
    secs = time.monotonic() - began
    if kind == "go":
        if "[build failed]" in out or "[setup failed]" in out:
            return None, secs, "the test does not build:\n" + out[-3000:]
        if "=== RUN   %s\n" % name not in out:
            return None, secs, "the selector matched no test:\n" + out[-2000:]
    elif r.returncode == 5 or " passed" not in out and " failed" not in out:
        return None, secs, "the selector matched no test:\n" + out[-2000:]
    return r.returncode == 0, secs, out


def why(out):
    """The first failure message of a test's output, to show what caught the break."""
    for line in out.splitlines():
        line = line.strip()
        if re.match(r"\S+_test\.go:\d+: time=", line):
            continue  # a log line of the server under test, not the test's verdict
        if re.match(r"\S+_test\.go:\d+: ", line) or line.startswith(("E   ", "FAILED ")):
            return line[:200]
    return "(no failure message found; see the test's output)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", default=os.path.join(HERE, "breaks.toml"))
    ap.add_argument("--only", nargs="*", help="run only the breaks with these ids or mechanisms")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = ap.parse_args()
    breaks = load(args.list)
    python = os.environ.get("WSGATE_TEST_PYTHON", os.path.join(ROOT, ".venv", "bin", "python"))
    if not os.path.exists(python):
        sys.exit("the test interpreter %s is missing: run `make venv` first" % python)
    if args.only:
        breaks = [b for b in breaks if b["id"] in args.only or b["mechanism"] in args.only]
        if not breaks:
            sys.exit("no break matches %s" % args.only)
    began = time.monotonic()
    tree = tempfile.mkdtemp(prefix="wsgate-mutants-")
    print("scratch copy:", tree, flush=True)
    copy_tree(tree)
    env = env_for(tree)
    status = 0
    results = []
    try:
        ok, out = build(tree, env)
        if not ok:
            print("the unbroken tree does not build:\n" + out)
            return 1
        # Baseline: each named test passes on the unbroken tree.
        for spec in sorted({t for b in breaks for t in b["tests"]}):
            passed, secs, out = run_test(tree, env, spec)
            print("baseline  %-70s %s (%.0fs)" % (spec, {True: "pass", False: "FAIL", None: "NO SUCH TEST"}[passed], secs), flush=True)
            if not passed:
                print(out[-3000:])
                status = 1
        if status:
            print("the unbroken tree fails the named tests: a break could not prove anything")
            return status
        for b in breaks:
            path = os.path.join(tree, b["file"])
            with open(path, encoding="utf-8") as f:
                orig = f.read()
            n = orig.count(b["find"])
            if n != 1:
                print("STALE     %s: the snippet occurs %d times in %s (must be exactly once)" % (b["id"], n, b["file"]))
                status = max(status, 2)
                results.append((b, None, "stale"))
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(orig.replace(b["find"], b["replace"]))
            try:
                ok, out = build(tree, env)
                if not ok:
                    print("STALE     %s: the broken tree does not build:\n%s" % (b["id"], out[-2000:]))
                    status = max(status, 2)
                    results.append((b, None, "stale"))
                    continue
                for spec in b["tests"]:
                    passed, secs, out = run_test(tree, env, spec)
                    verdict = {False: "caught", True: "MISSED", None: "NO SUCH TEST"}[passed]
                    print("%-9s %s: %s (%.0fs)" % (verdict, b["id"], spec, secs), flush=True)
                    if passed is False:
                        print("          " + why(out), flush=True)
                    if passed is not False:
                        status = max(status, 1)
                        print(out[-3000:])
                    results.append((b, spec, verdict))
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(orig)
    finally:
        if args.keep:
            print("kept", tree)
        else:
            shutil.rmtree(tree, ignore_errors=True)
    print()
    print("mechanism → test → break → result")
    for b, spec, verdict in results:
        print("%s → %s → %s (%s) → %s" % (b["mechanism"], spec or "-", b["id"], b["file"], verdict))
    mins, secs = divmod(int(time.monotonic() - began), 60)
    print("\n%d breaks, %d missed or stale; %dm%02ds" % (
        len(breaks), sum(1 for r in results if r[2] != "caught"), mins, secs))
    return status


if __name__ == "__main__":
    sys.exit(main())
