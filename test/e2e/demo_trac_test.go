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
// and Trac's Logout button ends the Django session; Django's superusers, even
// one made while the site runs, are Trac's administrators.
func demoTracSingleSignOn(t *testing.T, tmpl *demoTemplate) {
	site := tmpl.start(t)
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
	if strings.Contains(page, `href="/trac/admin"`) {
		t.Fatalf("Trac offers its admin to %s, who is no Django superuser\n%s", user, page)
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

	// A superuser made in Django now, while the site runs, administers Trac.
	boss, bossPassword := "boss", "pw-"+demoRandom(t)
	if out, err := demoManageResult(t, site.Dir, []string{"DJANGO_SUPERUSER_PASSWORD=" + bossPassword},
		"development.ini", "createsuperuser", "--noinput", "--username", boss, "--email", "boss@example.com"); err != nil {
		t.Fatalf("wsgate manage development.ini createsuperuser: %v\n%s", err, out)
	}
	c = demoClient(t)
	demoLogin(t, c, site.URL+"/accounts/login/?next=/trac/", boss, bossPassword)
	if resp, page = demoGet(t, c, site.URL+"/trac/admin"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "logged in as <span class=\"trac-author-user\">"+boss+"</span>") {
		t.Fatalf("GET /trac/admin as the new superuser %s: %s, want Trac's admin\n%s", boss, resp.Status, page)
	}
}
