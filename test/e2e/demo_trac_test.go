package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Trac embedded in the demo's Django view with Django's single sign-on: a
// Django user (here one made with `wsgate manage … shell`, not the
// superuser) is the Trac user; Trac's Login link leads to Django's login page
// and Trac's Logout button ends the Django session.
func TestDemoTracSingleSignOn(t *testing.T) {
	site := demoStart(t)
	user, password := "alice", "pw-"+demoRandom(t)
	demoManage(t, site.Dir, "shell", "-c",
		"from django.contrib.auth.models import User; User.objects.create_user('"+user+"', password='"+password+"')")
	c := demoClient(t)

	resp, page := demoGet(t, c, site.URL+"/trac/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `href="/trac/login"`) || strings.Contains(page, "logged in as") {
		t.Fatalf("anonymous GET /trac/: %s, want Trac's page with its Login link\n%s", resp.Status, page)
	}

	resp, _ = demoGet(t, c, site.URL+"/trac/login")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/accounts/login/?next=/trac/" {
		t.Fatalf("Trac's login link: %s to %q, want Django's login page", resp.Status, resp.Header.Get("Location"))
	}
	if to := demoLogin(t, c, site.URL+resp.Header.Get("Location"), user, password); to != "/trac/" {
		t.Fatalf("Django's login sent %s to %q, want back to /trac/", user, to)
	}

	resp, page = demoGet(t, c, site.URL+"/trac/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `logged in as <span class="trac-author-user">`+user+`</span>`) {
		t.Fatalf("GET /trac/ as %s: %s, want Trac to name the Django user\n%s", user, resp.Status, page)
	}
	// Trac writes its links under the mount point (SCRIPT_NAME=/trac).
	if !strings.Contains(page, `href="/trac/wiki"`) {
		t.Fatalf("Trac's links do not start with its mount point /trac\n%s", page)
	}

	token := regexp.MustCompile(`name="__FORM_TOKEN" type="hidden" value="([^"]+)"`).FindStringSubmatch(page)
	if token == nil {
		t.Fatalf("no Logout form with Trac's form token on Trac's page\n%s", page)
	}
	// A logout that does not carry Trac's token (another site's form) is ignored.
	resp, _ = demoPostForm(t, c, site.URL+"/trac/logout", url.Values{"__FORM_TOKEN": {"forged"}})
	if _, page = demoGet(t, c, site.URL+"/"); !strings.Contains(page, "signed in as <strong>"+user+"</strong>") {
		t.Fatalf("a logout without Trac's form token ended the session\n%s", page)
	}
	resp, _ = demoPostForm(t, c, site.URL+"/trac/logout", url.Values{"__FORM_TOKEN": {token[1]}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("Trac's Logout: %s, want a redirect", resp.Status)
	}
	if _, page = demoGet(t, c, site.URL+"/"); strings.Contains(page, "signed in as") {
		t.Fatalf("after Trac's Logout the Django session still has a user\n%s", page)
	}
	if _, page = demoGet(t, c, site.URL+"/trac/"); strings.Contains(page, "logged in as") {
		t.Fatalf("after Trac's Logout Trac still names a user\n%s", page)
	}
}
