"""No silent skip: test/strictskips.py turns a skip that is not on
test/skips-allowed.txt into a failure when WSGATE_TEST_STRICT=1 (a real pytest
run on a throw-away test file, with this directory's conftest.py)."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test"))

import strictskips  # noqa: E402

SKIPPING = '''
import pytest

def test_runs():
    pass

def test_skips_inside():
    pytest.skip("nothing to test against here")

@pytest.mark.skipif(True, reason="marked away")
def test_skipif():
    pass

@pytest.mark.xfail(reason="a known bug, not a skip")
def test_xfail():
    assert False
'''

MODULE_SKIP = '''
import pytest
pytest.skip("the whole module", allow_module_level=True)
'''


CONFTEST = '''
real = {"__file__": %r}
exec(compile(open(real["__file__"]).read(), real["__file__"], "exec"), real)
globals().update((name, hook) for name, hook in real.items() if name.startswith("pytest_"))
'''


def run(tmp_path, strict, module):
    # This directory's conftest.py, run as if it were where it is.
    (tmp_path / "conftest.py").write_text(CONFTEST % os.path.join(HERE, "conftest.py"))
    (tmp_path / "test_it.py").write_text(module)
    env = dict(os.environ, WSGATE_TEST_STRICT="1" if strict else "0")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "test_it.py"],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    return proc.returncode, proc.stdout.strip().splitlines()[-1], proc.stdout


def test_strict_turns_each_unlisted_skip_into_a_failure(tmp_path):
    # pytest.skip() fails the test; a skipif mark fails its setup (an error).
    code, summary, out = run(tmp_path, True, SKIPPING)
    assert (code, summary.split(" in ")[0]) == (1, "1 failed, 1 passed, 1 xfailed, 1 error"), out
    for reason in ("nothing to test against here", "marked away"):
        assert "not on test/skips-allowed.txt:\n    " + reason in out


def test_strict_fails_a_skipped_module(tmp_path):
    code, summary, out = run(tmp_path, True, MODULE_SKIP)
    assert (code, summary.split(" in ")[0]) == (2, "1 error"), out
    assert "not on test/skips-allowed.txt:\n    the whole module" in out


def test_without_strict_a_skip_is_a_skip(tmp_path):
    # (5: pytest's "no tests ran" for a module skipped whole)
    for module, want in ((SKIPPING, (0, "1 passed, 2 skipped, 1 xfailed")), (MODULE_SKIP, (5, "1 skipped"))):
        code, summary, out = run(tmp_path, False, module)
        assert (code, summary.split(" in ")[0]) == want, out


def test_an_entry_allows_the_skips_its_reason_starts():
    assert strictskips.allowed("chromium missing: /usr/bin/chromium", ["chromium missing"])
    assert not strictskips.allowed("curl missing", ["chromium missing"])
    assert not strictskips.allowed("anything", [])


def test_the_allow_list_reads_and_every_entry_has_a_why(tmp_path):
    strictskips.read_allowed()  # the real list parses
    good = tmp_path / "good.txt"
    good.write_text("# comment\n\nskip: chromium missing\nwhy: no browser on this platform\n")
    assert strictskips.read_allowed(str(good)) == ["chromium missing"]
    for text, where in (("skip: a\n", ":1: `skip:` without a `why:`"),
                        ("skip: a\nskip: b\nwhy: c\n", ":2: expected `why: …`"),
                        ("why: c\n", ":1: expected `skip: …`"),
                        ("skip: a\nwhy:\n", ":2: expected `why: …`")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=where):
            strictskips.read_allowed(str(bad))
