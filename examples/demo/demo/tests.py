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

from demo import hg


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
    """The /hg/ view refuses bad HTTP basic credentials before hgweb runs."""

    def setUp(self):
        User.objects.create_user("alice", password="right-password")
        var = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, var)
        os.mkdir(os.path.join(var, hg.REPOSITORIES))
        settings_override = override_settings(DEMO_VAR_DIR=var)
        settings_override.enable()
        self.addCleanup(settings_override.disable)

    def assert_challenged(self, response):
        self.assertEqual(response.status_code, 401)
        self.assertTrue(response["WWW-Authenticate"].startswith("Basic realm="))

    def test_wrong_password_is_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", **basic("alice", "wrong")))

    def test_unknown_user_is_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", **basic("bob", "right-password")))

    def test_malformed_credentials_are_challenged(self):
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Basic not base64!"))
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"no-colon").decode()))
        self.assert_challenged(self.client.get("/hg/demo", HTTP_AUTHORIZATION="Bearer abc"))

    def call_hgweb_stand_in(self, path, **extra):
        """Request path with a stand-in for hgweb; return the environ it got."""
        seen = {}

        def app(environ, start_response):
            seen.update(environ)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"hgweb stand-in"]

        original = hg.hgweb_app
        hg.hgweb_app = lambda: app
        try:
            response = self.client.get(path, **extra)
        finally:
            hg.hgweb_app = original
        self.assertEqual(response.status_code, 200)
        return seen

    def test_right_credentials_reach_hgweb_as_remote_user(self):
        seen = self.call_hgweb_stand_in("/hg/demo/file/tip", **basic("alice", "right-password"))
        self.assertEqual(seen["REMOTE_USER"], "alice")
        self.assertNotIn("HTTP_AUTHORIZATION", seen)
        self.assertEqual(seen["SCRIPT_NAME"], "/hg")
        self.assertEqual(seen["PATH_INFO"], "/demo/file/tip")

    def test_browser_session_user_is_remote_user(self):
        self.client.login(username="alice", password="right-password")
        self.assertEqual(self.call_hgweb_stand_in("/hg/demo")["REMOTE_USER"], "alice")

    def test_anonymous_has_no_remote_user(self):
        self.assertNotIn("REMOTE_USER", self.call_hgweb_stand_in("/hg/demo"))


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

    def test_hg_and_trac_ask_for_demo_setup(self):
        for path in ("/hg/demo", "/trac/"):
            response = self.client.get(path)
            self.assertEqual(response.status_code, 503, path)
            self.assertIn(b"wsgate manage development.ini demo_setup", response.content)
