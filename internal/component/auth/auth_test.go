package auth

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

const fixturePassword = "s3cret pass:wörd" // testdata/all.htpasswd, written by Apache's htpasswd

// seen is what the application behind the filter was handed.
type seen struct {
	RemoteUser string
	Header     http.Header
}

// serve builds the [filter:auth] of ini in dir and serves it in front of an
// app that reports the Facts and headers it got.
func serve(t *testing.T, dir, ini string) *httptest.Server {
	t.Helper()
	built, err := componenttest.BuildINI(t, &componenttest.Host{}, dir, ini, "auth", true)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Header: r.Header}
		if f := component.FactsOf(r); f != nil {
			s.RemoteUser = f.RemoteUser
		}
		json.NewEncoder(w).Encode(s)
	})
	srv := httptest.NewServer(built.Wrap(app))
	t.Cleanup(srv.Close)
	return srv
}

type result struct {
	status int
	header http.Header
	seen   seen
}

func get(t *testing.T, url string, header map[string]string, basic ...string) result {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = []string{v} // as written: Remote_User must reach the server so spelled
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &res.seen); err != nil {
			t.Fatalf("app's answer %q: %v", body, err)
		}
	}
	return res
}

func fixtureDir(t testing.TB) string {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/all.htpasswd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

const basicINI = `[filter:auth]
use = egg:wsgate#auth
htpasswd = users.htpasswd
realm = Staff "only"
`

// Every scheme of the fixture (bcrypt $2y$ and $2a$, $apr1$, $1$, {SHA},
// $5$, $6$) accepts its password and refuses a near miss; the user reaches
// the app as Facts.RemoteUser and the password does not reach it at all.
func TestEverySchemeHtpasswdWrites(t *testing.T) {
	srv := serve(t, fixtureDir(t), basicINI)
	for _, user := range []string{"bcrypt", "bcrypt2a", "apr1", "md5", "sha1", "sha256", "sha512"} {
		ok := get(t, srv.URL, nil, user, fixturePassword)
		if ok.status != 200 || ok.seen.RemoteUser != user {
			t.Errorf("%s with its password: status %d, RemoteUser %q", user, ok.status, ok.seen.RemoteUser)
		}
		if v := ok.seen.Header.Get("Authorization"); v != "" {
			t.Errorf("%s: the app was handed the credentials %q", user, v)
		}
		bad := get(t, srv.URL, nil, user, fixturePassword+"x")
		if bad.status != 401 {
			t.Errorf("%s with a wrong password: status %d, want 401", user, bad.status)
		}
		if got, want := bad.header.Get("WWW-Authenticate"), `Basic realm="Staff \"only\"", charset="UTF-8"`; got != want {
			t.Errorf("challenge %q, want %q", got, want)
		}
	}
	if r := get(t, srv.URL, nil, "nobody", fixturePassword); r.status != 401 {
		t.Errorf("unknown user: status %d, want 401", r.status)
	}
	if r := get(t, srv.URL, nil); r.status != 401 {
		t.Errorf("no credentials: status %d, want 401", r.status)
	}
	if r := get(t, srv.URL, map[string]string{"Authorization": "Basic !!!"}); r.status != 400 {
		t.Errorf("undecodable credentials: status %d, want 400", r.status)
	}
	if r := get(t, srv.URL, map[string]string{"Authorization": "Bearer abc"}); r.status != 401 {
		t.Errorf("a bearer token where a password is required: status %d, want 401", r.status)
	}
}

// Client headers never become RemoteUser, whatever their spelling.
func TestClientHeadersAreNotAUser(t *testing.T) {
	srv := serve(t, fixtureDir(t), basicINI+"optional = true\n")
	for _, h := range []string{"Remote-User", "Remote_User", "X-Remote-User", "REMOTE-USER", "REMOTE_USER"} {
		r := get(t, srv.URL, map[string]string{h: "admin"})
		if r.status != 200 || r.seen.RemoteUser != "" {
			t.Errorf("%s: admin: status %d, RemoteUser %q", h, r.status, r.seen.RemoteUser)
		}
		r = get(t, srv.URL, map[string]string{h: "admin"}, "sha1", fixturePassword)
		if r.seen.RemoteUser != "sha1" {
			t.Errorf("%s: admin with sha1's password: RemoteUser %q, want sha1", h, r.seen.RemoteUser)
		}
	}
}

// optional: anonymous requests and foreign schemes pass without a user;
// wrong passwords are still refused.
func TestOptional(t *testing.T) {
	srv := serve(t, fixtureDir(t), basicINI+"optional = yes\n")
	if r := get(t, srv.URL, nil); r.status != 200 || r.seen.RemoteUser != "" {
		t.Errorf("anonymous: status %d, RemoteUser %q", r.status, r.seen.RemoteUser)
	}
	r := get(t, srv.URL, map[string]string{"Authorization": "Bearer abc"})
	if r.status != 200 || r.seen.Header.Get("Authorization") != "Bearer abc" {
		t.Errorf("bearer token: status %d, app saw Authorization %q", r.status, r.seen.Header.Get("Authorization"))
	}
	if r := get(t, srv.URL, nil, "apr1", fixturePassword); r.status != 200 || r.seen.RemoteUser != "apr1" {
		t.Errorf("valid: status %d, RemoteUser %q", r.status, r.seen.RemoteUser)
	}
	if r := get(t, srv.URL, nil, "apr1", "guess"); r.status != 401 {
		t.Errorf("wrong password in optional mode: status %d, want 401", r.status)
	}
}

// The trusted header is a user only from a trusted peer; from anyone else it
// is removed before the app sees it, and its "_" spellings always are.
func TestTrustedHeader(t *testing.T) {
	const ini = `[filter:auth]
use = egg:wsgate#auth
trusted_header = X-Forwarded-User
`
	dir := t.TempDir()
	trustedSrv := serve(t, dir, ini+"trusted = 127.0.0.0/8 ::1\n")
	r := get(t, trustedSrv.URL, map[string]string{"X-Forwarded-User": "alice", "X_Forwarded_User": "mallory"})
	if r.status != 200 || r.seen.RemoteUser != "alice" {
		t.Errorf("trusted peer: status %d, RemoteUser %q, want alice", r.status, r.seen.RemoteUser)
	}
	for name, v := range r.seen.Header {
		if strings.EqualFold(name, "X_Forwarded_User") {
			t.Errorf("the underscore spelling reached the app: %s: %q", name, v)
		}
	}
	if r := get(t, trustedSrv.URL, nil); r.status != 403 {
		t.Errorf("trusted peer without the header: status %d, want 403", r.status)
	}

	untrusted := serve(t, dir, ini+"trusted = 192.0.2.0/24\n") // TEST-NET-1: never this test's peer
	if r := get(t, untrusted.URL, map[string]string{"X-Forwarded-User": "alice"}); r.status != 403 {
		t.Errorf("untrusted peer: status %d, want 403", r.status)
	}
	opt := serve(t, dir, ini+"trusted = 192.0.2.0/24\noptional = true\n")
	r = get(t, opt.URL, map[string]string{"X-Forwarded-User": "alice"})
	if r.status != 200 || r.seen.RemoteUser != "" || r.seen.Header.Get("X-Forwarded-User") != "" {
		t.Errorf("untrusted peer, optional: status %d, RemoteUser %q, header at the app %q", r.status, r.seen.RemoteUser, r.seen.Header.Get("X-Forwarded-User"))
	}
}

// Mistakes are refused at load, located at the option and, for the file,
// at its line.
func TestRefusedAtLoad(t *testing.T) {
	cases := []struct {
		name, ini, file, want string
	}{
		{"DES", basicINI, "bob:rqXexS6ZhobKA\n", "site.ini:3 [filter:auth] htpasswd: users.htpasswd:1: user \"bob\": crypt() DES hash (htpasswd -d) refused"},
		{"plain text", basicINI, "# users\n\nbob:hunter2\n", "users.htpasswd:3: user \"bob\": not a hash wsgate accepts"},
		{"no colon", basicINI, "alice:{SHA}ZlWOhWahY87vZUe9P+5Rti4/rPc=\nbob\n", "users.htpasswd:2: no ':' between user and hash"},
		{"duplicate", basicINI, "a:{SHA}ZlWOhWahY87vZUe9P+5Rti4/rPc=\na:{SHA}ZlWOhWahY87vZUe9P+5Rti4/rPc=\n", "users.htpasswd:2: user \"a\" is already defined on line 1"},
		{"short bcrypt", basicINI, "a:$2y$05$tooShort\n", "users.htpasswd:1: user \"a\": malformed bcrypt hash"},
		{"short apr1", basicINI, "a:$apr1$salt$abc\n", "users.htpasswd:1: user \"a\": malformed $apr1$ hash"},
		{"bad sha", basicINI, "a:{SHA}abc\n", "users.htpasswd:1: user \"a\": malformed {SHA} hash"},
		{"missing file", "[filter:auth]\nuse = egg:wsgate#auth\nhtpasswd = nope.htpasswd\n", "", "site.ini:3 [filter:auth] htpasswd:"},
		{"nothing", "[filter:auth]\nuse = egg:wsgate#auth\n", "", "site.ini:1 [filter:auth]: auth needs htpasswd"},
		{"header alone", "[filter:auth]\nuse = egg:wsgate#auth\ntrusted_header = X-User\n", "", "site.ini:3 [filter:auth] trusted_header: needs trusted"},
		{"networks alone", basicINI + "trusted = 10.0.0.0/8\n", "a:{SHA}ZlWOhWahY87vZUe9P+5Rti4/rPc=\n", "site.ini:5 [filter:auth] trusted: is only used with trusted_header"},
		{"underscore header", "[filter:auth]\nuse = egg:wsgate#auth\ntrusted_header = X_User\ntrusted = 10.0.0.1\n", "", "site.ini:3 [filter:auth] trusted_header: \"X_User\" is not a header name"},
		{"bad network", "[filter:auth]\nuse = egg:wsgate#auth\ntrusted_header = X-User\ntrusted = 10.0.0.0/33\n", "", "site.ini:4 [filter:auth] trusted:"},
		{"bad bool", basicINI + "optional = maybe\n", "a:{SHA}ZlWOhWahY87vZUe9P+5Rti4/rPc=\n", "site.ini:5 [filter:auth] optional: \"maybe\" is not true or false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.file != "" {
				os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(c.file), 0o600)
			}
			_, err := componenttest.BuildINI(t, &componenttest.Host{}, dir, c.ini, "auth", true)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(c.file, "rqXexS6ZhobKA") && strings.Contains(err.Error(), "rqXexS6ZhobKA") {
				t.Errorf("the message quotes the hash: %v", err)
			}
		})
	}
}

// The file is re-read when it changes; a version that does not parse is
// logged and the last good one stays in force.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.htpasswd")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path+".new", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil { // as editors and htpasswd replace files
			t.Fatal(err)
		}
	}
	// {SHA} of "one" and "two", from `htpasswd -nbs`.
	const one, two = "{SHA}/gW83NxJKAEngaXxoqd8u1OY4QY=", "{SHA}rXguzax3D8brmmLkT5CHP7l/sms="
	write("u:" + one + "\n")
	var logs bytes.Buffer
	u, err := openUserFile(path, "users.htpasswd", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := u.now()
	u.now = func() time.Time { return clock }
	if !u.check("u", "one") {
		t.Fatal("u/one refused")
	}

	write("u:" + two + "\n")
	if !u.check("u", "one") {
		t.Fatal("re-read before the recheck interval passed")
	}
	clock = clock.Add(u.recheck)
	if u.check("u", "one") || !u.check("u", "two") {
		t.Fatal("the changed file was not re-read")
	}
	if !strings.Contains(logs.String(), `msg="htpasswd reloaded"`) {
		t.Errorf("no reload logged: %s", logs.String())
	}

	write("u:" + one + "\nbroken line\n")
	clock = clock.Add(u.recheck)
	if !u.check("u", "two") {
		t.Fatal("a broken file replaced the last good one")
	}
	if !strings.Contains(logs.String(), "users.htpasswd:2: no ':' between user and hash") {
		t.Errorf("the broken line was not logged with its place: %s", logs.String())
	}

	os.Remove(path)
	clock = clock.Add(u.recheck)
	if !u.check("u", "two") {
		t.Fatal("a vanished file replaced the last good one")
	}

	write("u:" + one + "\n")
	clock = clock.Add(u.recheck)
	if !u.check("u", "one") {
		t.Fatal("the mended file was not read")
	}
}

// The decoy checked for unknown users is the slow kind when the file has
// one, so that an unknown name answers no faster than a bcrypt user.
func TestDecoyIsSlow(t *testing.T) {
	dir := fixtureDir(t)
	u, err := openUserFile(filepath.Join(dir, "users.htpasswd"), "users.htpasswd", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if d := u.cur.Load().decoy; d == nil || !d.slow() {
		t.Fatalf("decoy %+v is not a slow hash", d)
	}
}
