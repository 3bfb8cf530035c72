"""The demo's own Django tests, run with the INI settings:

    wsgate test development.ini demo

They check the single sign-on views with Django's test client; the real hg
client, Trac pages and a real browser are exercised end to end by wsgate's
test/e2e/demo_*_test.go.
"""

import base64
import os
import shutil
import tempfile

from django.conf import settings
from django.contrib.auth.models import User
from django.test import TestCase, override_settings

from demo import downloads, git, hg


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


class SettingsFromINITests(TestCase):
    def test_the_ini_file_configured_django(self):
        # development.ini's values, not the settings module's placeholders.
        # (DEBUG is not checked: Django's test runner always turns it off.)
        self.assertEqual(settings.TIME_ZONE, "Europe/London")
        self.assertEqual(settings.DEMO_SITE_TITLE, "wsgate demo (development)")
        self.assertNotIn("not-a-secret", settings.SECRET_KEY)

    def test_home_page_names_the_ini_file_of_each_setting(self):
        page = self.client.get("/").content.decode()
        self.assertIn("<code>DEMO_SITE_TITLE</code>", page)
        self.assertIn("development.ini:", page)
        self.assertIn("base.ini:", page)
        self.assertNotIn(settings.SECRET_KEY, page)


class HgCredentialsTests(TestCase):
    """The /hg/ view refuses bad HTTP basic credentials, and asks anonymous
    pushes for a login, before handing anything to hgweb; it hands the rest
    to hgweb (through wsgate's delegate composite) with the user."""

    def setUp(self):
        User.objects.create_user("alice", password="right-password")
        var = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, var)
        os.mkdir(os.path.join(var, hg.REPOSITORIES))
        os.mkdir(os.path.join(var, git.REPOSITORIES))
        settings_override = override_settings(DEMO_VAR_DIR=var)
        settings_override.enable()
        self.addCleanup(settings_override.disable)

    def assert_challenged(self, response):
        self.assertEqual(response.status_code, 401)
        self.assertTrue(response["WWW-Authenticate"].startswith("Basic realm="))
        self.assertFalse(response.has_header("X-Wsgate-Delegate"))

    def test_wrong_password_is_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", **basic("alice", "wrong")))

    def test_unknown_user_is_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", **basic("bob", "right-password")))

    def test_malformed_credentials_are_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Basic not base64!"))
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"no-colon").decode()))
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Bearer abc"))

    def test_anonymous_push_is_challenged(self):
        self.assert_challenged(self.client.post("/hg/demo?cmd=unbundle", b"bundle", content_type="application/mercurial-0.1"))
        self.assert_challenged(self.client.get("/git/demo.git/info/refs?service=git-receive-pack"))
        self.assert_challenged(self.client.post("/git/demo.git/git-receive-pack", b"pack", content_type="application/x-git-receive-pack-request"))

    def delegated(self, response, target):
        """The headers the view handed to wsgate's delegate composite."""
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["X-Wsgate-Delegate"], target)
        return {k: v for k, v in response.items() if k.startswith("X-Wsgate-")}

    def test_right_credentials_reach_hgweb_as_remote_user(self):
        seen = self.delegated(self.client.get("/hg/demo/file/tip", **basic("alice", "right-password")), "hgweb")
        self.assertEqual(seen["X-Wsgate-Remote-User"], "alice")
        self.assertEqual(seen["X-Wsgate-Script-Name"], "/hg")
        self.assertEqual(seen["X-Wsgate-Path-Info"], "/demo/file/tip")

    def test_browser_session_user_is_remote_user(self):
        self.client.login(username="alice", password="right-password")
        self.assertEqual(self.delegated(self.client.get("/hg/demo"), "hgweb")["X-Wsgate-Remote-User"], "alice")

    def test_anonymous_has_no_remote_user(self):
        self.assertNotIn("X-Wsgate-Remote-User", self.delegated(self.client.get("/hg/demo"), "hgweb"))
        self.assertNotIn("X-Wsgate-Remote-User", self.delegated(self.client.get("/git/demo.git/info/refs?service=git-upload-pack"), "git"))

    def test_git_push_as_a_user_is_delegated(self):
        seen = self.delegated(self.client.post("/git/demo.git/git-receive-pack", b"pack", content_type="application/x-git-receive-pack-request",
                                               **basic("alice", "right-password")), "git")
        self.assertEqual(seen["X-Wsgate-Remote-User"], "alice")
        self.assertEqual(seen["X-Wsgate-Path-Info"], "/demo.git/git-receive-pack")


class DownloadTests(TestCase):
    """A download is Django's decision and Go's work: the view answers with
    X-Accel-Redirect for logged-in users only."""

    def setUp(self):
        User.objects.create_user("alice", password="pw")
        var = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, var)
        settings_override = override_settings(DEMO_VAR_DIR=var)
        settings_override.enable()
        self.addCleanup(settings_override.disable)
        downloads.ensure_sample()

    def test_anonymous_is_sent_to_the_login(self):
        response = self.client.get("/downloads/" + downloads.SAMPLE)
        self.assertEqual(response.status_code, 302)
        self.assertIn("/accounts/login/", response["Location"])

    def test_logged_in_gets_the_redirect_for_go(self):
        self.client.login(username="alice", password="pw")
        response = self.client.get("/downloads/" + downloads.SAMPLE)
        self.assertEqual(response["X-Accel-Redirect"], "/protected/" + downloads.SAMPLE)
        self.assertEqual(response["Content-Type"], "text/plain")
        self.assertEqual(response.content, b"")
        for name in ("missing.txt", ".hidden", "..%2Fdemo.sqlite3"):
            self.assertEqual(self.client.get("/downloads/" + name).status_code, 404, name)


class TracSingleSignOnTests(TestCase):
    def test_trac_login_is_djangos(self):
        response = self.client.get("/trac/login")
        self.assertRedirects(response, "/accounts/login/?next=/trac/", fetch_redirect_response=False)

    def test_trac_login_leads_back_to_the_trac_page_it_was_clicked_on(self):
        response = self.client.get("/trac/login", HTTP_REFERER="http://testserver/trac/wiki/WikiStart?version=1")
        self.assertRedirects(
            response, "/accounts/login/?next=/trac/wiki/WikiStart%3Fversion%3D1", fetch_redirect_response=False
        )
        # Never back to another site, nor outside Trac.
        for referer in ("http://evil.example/trac/wiki", "http://testserver/admin/"):
            response = self.client.get("/trac/login", HTTP_REFERER=referer)
            self.assertRedirects(response, "/accounts/login/?next=/trac/", fetch_redirect_response=False)

    def test_trac_login_when_logged_in_goes_straight_back(self):
        User.objects.create_user("alice", password="pw")
        self.client.login(username="alice", password="pw")
        response = self.client.get("/trac/login", HTTP_REFERER="http://testserver/trac/timeline")
        self.assertRedirects(response, "/trac/timeline", fetch_redirect_response=False)

    def test_trac_logout_needs_a_post_with_tracs_form_token(self):
        User.objects.create_user("alice", password="pw")
        self.client.login(username="alice", password="pw")
        self.assertEqual(self.client.get("/trac/logout").status_code, 405)
        self.client.cookies["trac_form_token"] = "token"
        self.client.post("/trac/logout", {"__FORM_TOKEN": "forged"})
        self.assertIn("_auth_user_id", self.client.session)
        response = self.client.post("/trac/logout", {"__FORM_TOKEN": "token"})
        self.assertRedirects(response, "/trac/", fetch_redirect_response=False)
        self.assertNotIn("_auth_user_id", self.client.session)


@override_settings(DEMO_VAR_DIR="/nonexistent/wsgate-demo-var")
class NotSetUpTests(TestCase):
    """Before `demo_setup`, the embedded applications say what to run."""

    def test_hg_trac_and_git_ask_for_demo_setup(self):
        for path in ("/hg/demo", "/trac/", "/git/demo.git/info/refs"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 503, path)
            self.assertIn(b"wsgate manage development.ini demo_setup", response.content)
