"""No silent skip (test/strictskips.py): under `make test` a skip whose reason
is not on test/skips-allowed.txt fails."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from strictskips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401
