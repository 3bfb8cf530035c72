package settings

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the table of docs/serve.md from the declarations")

// TestServeDocIsCurrent: docs/serve.md's table is what Table declares.
// After changing a setting: go test ./internal/settings -update
func TestServeDocIsCurrent(t *testing.T) {
	path := filepath.Join(testutil.RepoRoot(), "docs", "serve.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := RenderInto(got)
	if err != nil {
		t.Fatalf("docs/serve.md: %v", err)
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/serve.md is stale: run go test ./internal/settings -update")
	}
}

func TestEverySettingIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Table {
		if s.Flag == "" || s.Help == "" || s.Doc == "" || s.field == nil {
			t.Errorf("%+v lacks a flag, help, doc or field", s)
		}
		for _, k := range append([]string{"--" + s.Flag, s.Key}, s.Aliases...) {
			if k != "" && seen[k] {
				t.Errorf("%s is declared twice", k)
			}
			seen[k] = true
		}
		if s.Arg != "" && !strings.Contains(s.Help, s.Arg) {
			t.Errorf("--%s: the help does not name its argument %s", s.Flag, s.Arg)
		}
	}
}

func section(t *testing.T, ini string) *config.Conf {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := config.LoadServerSettings(path, config.Options{})
	if err != nil || srv == nil {
		t.Fatalf("loading [server:main]: %v", err)
	}
	return srv.LocalConf
}

// parse is what serve does: defaults, flags, then Resolve.
func parse(t *testing.T, conf *config.Conf, args ...string) (Serve, []string, error) {
	t.Helper()
	var o Serve
	Defaults(&o)
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	Flags(fs, &o)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	unused, err := Resolve(&o, conf, given)
	return o, unused, err
}

// A waitress section (pserve's development.ini) runs unchanged: listen is
// the bind, threads maps, and the keys that do not map are named.
func TestWaitressSection(t *testing.T) {
	conf := section(t, "[server:main]\nuse = egg:waitress#main\nlisten = localhost:6543 [::1]:6543\nthreads = 4\nurl_scheme = https\nchannel_timeout = 60\n")
	o, unused, err := parse(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Binds, " ") != "localhost:6543 [::1]:6543" || o.Threads != 4 {
		t.Errorf("binds %q threads %d", o.Binds, o.Threads)
	}
	if strings.Join(unused, " ") != "channel_timeout url_scheme" {
		t.Errorf("unused %q", unused)
	}
	o, _, _ = parse(t, section(t, "[server:main]\nuse = egg:waitress#main\nhost = 0.0.0.0\nport = 6543\n"))
	if strings.Join(o.Binds, " ") != "0.0.0.0:6543" {
		t.Errorf("host+port binds %q", o.Binds)
	}
}

func TestGunicornSection(t *testing.T) {
	conf := section(t, `[server:main]
use = egg:gunicorn#main
bind = 0.0.0.0:8000 unix:/tmp/g.sock
workers = 3
threads = 2
timeout = 45
graceful_timeout = 5
max_requests = 1000
max_requests_jitter = 50
keepalive = 2
worker_class = gthread
loglevel = debug
`)
	o, unused, err := parse(t, conf, "--workers", "5")
	if err != nil {
		t.Fatal(err)
	}
	if o.Workers != 5 || o.Threads != 2 || o.Timeout != 45 || o.GracefulTimeout != 5 || o.MaxRequests != 1000 || o.MaxRequestsJitter != 50 || o.LogLevel != "debug" {
		t.Errorf("%+v", o)
	}
	if strings.Join(o.Binds, " ") != "0.0.0.0:8000 unix:/tmp/g.sock" {
		t.Errorf("binds %q", o.Binds)
	}
	if strings.Join(unused, " ") != "keepalive worker_class" {
		t.Errorf("unused %q", unused)
	}
}

// flag > environment > section > default, for a setting with all four.
func TestPrecedence(t *testing.T) {
	Table = append(Table, Setting{Flag: "x-test", Key: "x_test", Env: "WSGATE_X_TEST", Default: "default", Help: "h", Doc: "d",
		field: func(o *Serve) any { return &o.App }})
	defer func() { Table = Table[:len(Table)-1] }()
	conf := section(t, "[server:main]\nx_test = file\n")
	check := func(want string, args ...string) {
		t.Helper()
		o, _, err := parse(t, conf, args...)
		if err != nil || o.App != want {
			t.Errorf("%v: %q %v, want %q", args, o.App, err, want)
		}
	}
	t.Setenv("WSGATE_X_TEST", "env")
	check("flag", "--x-test", "flag")
	check("env")
	t.Setenv("WSGATE_X_TEST", "")
	check("file")
	o, _, _ := parse(t, nil)
	if o.App != "default" {
		t.Errorf("default: %q", o.App)
	}
}

func TestBadValueNamesItsPlace(t *testing.T) {
	_, _, err := parse(t, section(t, "[server:main]\nuse = egg:Paste#http\nthreads = many\n"))
	if err == nil || !strings.Contains(err.Error(), `site.ini:3 [server:main] threads: "many" is not a whole number ≥ 1`) {
		t.Fatalf("error %v", err)
	}
	_, _, err = parse(t, section(t, "[server:main]\ngraceful_timeout = 0\n"))
	if err == nil || !strings.Contains(err.Error(), "graceful_timeout: 0 must be more than 0 seconds") {
		t.Fatalf("error %v", err)
	}
}

// A setting reads the same from the command line and the file.
func TestSettingsParse(t *testing.T) {
	var o Serve
	set := func(flag, v string) error { return Lookup(flag).Set(&o, v) }
	if err := set("acme-domains", "a.example, b.example"); err != nil {
		t.Fatal(err)
	}
	if err := set("acme-domains", "c.example"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.Net.ACMEDomains, " "); got != "a.example b.example c.example" {
		t.Errorf("acme_domains %q", got)
	}
	if err := set("http3", "yes"); err != nil || !o.Net.HTTP3 {
		t.Errorf("http3 = yes: %v %v", o.Net.HTTP3, err)
	}
	if err := set("h2c", "sometimes"); err == nil {
		t.Error("h2c = sometimes accepted")
	}
	if err := set("cert-reqs", "always"); err == nil || !strings.Contains(err.Error(), "none, optional, required") {
		t.Errorf("cert_reqs = always: %v", err)
	}
	if err := set("cert-reqs", "2"); err != nil || o.Net.CertReqs != "required" {
		t.Errorf("cert_reqs = 2 (gunicorn's ssl.CERT_REQUIRED): %q %v", o.Net.CertReqs, err)
	}
	if err := set("timeout", "-1"); err == nil || err.Error() != "-1 is not a number of seconds ≥ 0" {
		t.Errorf("timeout -1: %v", err)
	}
}

// The options of seeing inside and of memory read from the section like
// the others; a bad size names its place.
func TestInsideAndMemoryOptions(t *testing.T) {
	o, _, err := parse(t, section(t, "[server:main]\nuse = egg:Paste#http\nmax_worker_memory = 512m\npreload = true\nlog_format = json\ncontrol_socket = /run/site/ctl.sock\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxWorkerMemory != 512<<20 || !o.Preload || o.LogFormat != "json" || o.ControlSocket != "/run/site/ctl.sock" {
		t.Fatalf("options: %+v", o)
	}
	_, _, err = parse(t, section(t, "[server:main]\nuse = egg:Paste#http\nmax_worker_memory = lots\n"))
	if err == nil || !strings.Contains(err.Error(), `site.ini:3 [server:main] max_worker_memory: "lots" is not a size`) {
		t.Fatalf("max_worker_memory = lots: %v", err)
	}
	if _, _, err = parse(t, section(t, "[server:main]\nlog_format = xml\n")); err == nil || !strings.Contains(err.Error(), `"xml" is not one of text, json`) {
		t.Fatalf("log_format = xml: %v", err)
	}
}
