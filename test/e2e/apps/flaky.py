"""The pep3333 application, but its import fails while $E2E_RECORD_DIR/fail-import
exists: workers started (or restarted, or reloaded) then cannot load it. Each
failed attempt leaves import-failed-<pid> behind for the tests to await."""

import os

from pep3333 import RECORD_DIR, app, make_app, record  # noqa: F401  (app, or make_app from an INI file, is what wsgate serves)

if os.path.exists(os.path.join(RECORD_DIR, "fail-import")):
    record("import-failed-%d" % os.getpid(), "")
    raise RuntimeError("e2e: flaky import fails on purpose")
