"""The admin case's preparation against a real HTTP server (run: .venv/bin/python -m pytest -q bench/test_djadmin.py).

bench/run.py measures this page on every server only after logging in through Django's own form and finding all
100 rows; these tests hold that check to account: a wrong password or a missing session must fail it.
"""

import os
import sys
import threading
import wsgiref.simple_server

import pytest

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import run  # noqa: E402


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def admin_port(tmp_path_factory):
    os.environ["BENCH_DJADMIN_DB"] = str(tmp_path_factory.mktemp("djadmin") / "db.sqlite3")
    run.prepare_admin(None)  # the subprocess sees BENCH_DJADMIN_DB, as the servers do
    from djadmin.wsgi import application

    server = wsgiref.simple_server.make_server(run.HOST, 0, application, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def admin_case(headers):
    """A copy of the djadmin case sending `headers` (the module's own case keeps its run's state)."""
    case = run.CASES["djadmin"]
    copy = run.Case(case.name, case.title, case.app, case.path, marker=case.marker)
    copy.headers = headers
    return copy


def test_login_then_change_list_of_100_rows(admin_port):
    headers = run.admin_login(admin_port)
    assert headers[0].startswith("Cookie: csrftoken=") and "; sessionid=" in headers[0]
    case = admin_case(headers)
    size = run.check_page(case, admin_port)
    assert size > 100 * 300  # a hundred table rows of several cells each, not a login page


def test_without_session_the_page_is_refused(admin_port):
    case = admin_case([])
    with pytest.raises(run.ServerFailed, match="not logged in"):
        run.check_page(case, admin_port)


def test_wrong_password_fails_the_login(admin_port, monkeypatch):
    monkeypatch.setattr(run, "ADMIN_PASSWORD", "not-the-password")
    with pytest.raises(run.ServerFailed, match="admin login: HTTP 200"):
        run.admin_login(admin_port)
