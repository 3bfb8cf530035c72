"""The pytest side of "no silent skip": with WSGATE_TEST_STRICT=1 (`make test`
sets it) a skipped test, or a skipped module, is reported as a failure unless
its reason starts with an entry of test/skips-allowed.txt. The Go side is
internal/testutil.Skip, reading the same file.

Imported by python/tests/conftest.py and bench/conftest.py, which re-export
the two hooks."""

import os

import pytest

ALLOWED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skips-allowed.txt")


def strict():
    return os.environ.get("WSGATE_TEST_STRICT") == "1"


def read_allowed(path=ALLOWED):
    """The `skip:` reasons of the allow-list; each must have a `why:` next."""
    allowed, pending = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "skip" and pending is None and value:
                pending = (n, value)
            elif key == "why" and pending is not None and value:
                allowed.append(pending[1])
                pending = None
            else:
                raise ValueError("%s:%d: expected %s" % (path, n, "`why: …`" if pending else "`skip: …`"))
    if pending is not None:
        raise ValueError("%s:%d: `skip:` without a `why:` line after it" % (path, pending[0]))
    return allowed


def allowed(reason, entries):
    return any(reason.startswith(entry) for entry in entries)


def reason_of(report):
    """The reason a skip report gives, without pytest's "Skipped: " prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def forbid_unlisted_skip(report):
    if not (strict() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = reason_of(report)
    if allowed(reason, read_allowed()):
        return
    report.outcome = "failed"
    report.longrepr = (
        "skipped under WSGATE_TEST_STRICT=1 for a reason not on test/skips-allowed.txt:\n"
        "    %s\n"
        "Make the test run (install what it needs), or add the reason there with a why." % reason
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    forbid_unlisted_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    forbid_unlisted_skip(outcome.get_result())
