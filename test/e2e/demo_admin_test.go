package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The admin's login flow over plain HTTP, as a browser without JavaScript
// does it: the CSRF cookie and token from the login page, a refused wrong
// password, the admin index greeting the superuser made from development.ini,
// and a logout that ends the session.
func demoAdminLoginOverHTTP(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
	c := demoClient(t)

	resp, _ := demoGet(t, c, site.URL+"/admin/")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/admin/login/") {
		t.Fatalf("anonymous GET /admin/: %s to %q, want a redirect to the login page", resp.Status, resp.Header.Get("Location"))
	}

	// Without the CSRF cookie and token, Django refuses the form outright.
	resp, _ = demoPostForm(t, c, site.URL+"/admin/login/", url.Values{"username": {site.AdminUser}, "password": {site.AdminPassword}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("login POST without a CSRF token: %s, want 403", resp.Status)
	}

	loginURL := site.URL + "/admin/login/?next=/admin/"
	resp, page := demoGet(t, c, loginURL)
	form := url.Values{"csrfmiddlewaretoken": {demoCSRFToken(t, page)}, "username": {site.AdminUser}, "password": {"wrong-" + site.AdminPassword}, "next": {"/admin/"}}
	resp, page = demoPostForm(t, c, loginURL, form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "correct username and password") {
		t.Fatalf("wrong password: %s, want the login page again with an error\n%s", resp.Status, page)
	}

	if to := demoLogin(t, c, loginURL, site.AdminUser, site.AdminPassword); to != "/admin/" {
		t.Fatalf("login redirected to %q, want /admin/", to)
	}
	resp, page = demoGet(t, c, site.URL+"/admin/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<strong>"+site.AdminUser+"</strong>") {
		t.Fatalf("GET /admin/ after login: %s, want the index greeting %s\n%s", resp.Status, site.AdminUser, page)
	}
	if !strings.Contains(page, `href="/admin/auth/user/"`) {
		t.Fatalf("the superuser's admin index does not offer the user list\n%s", page)
	}

	// Django 5 logs out with a POST carrying the CSRF token; the demo's
	// LOGOUT_REDIRECT_URL leads home.
	resp, _ = demoPostForm(t, c, site.URL+"/admin/logout/", url.Values{"csrfmiddlewaretoken": {demoCSRFToken(t, page)}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /admin/logout/: %s to %q, want a redirect home", resp.Status, resp.Header.Get("Location"))
	}
	resp, _ = demoGet(t, c, site.URL+"/admin/")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /admin/ after logout: %s, want a redirect to the login page", resp.Status)
	}
}
