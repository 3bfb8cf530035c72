package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

func loadServerSection(t *testing.T, ini string) *config.Node {
	t.Helper()
	path := filepath.Join(t.TempDir(), "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := config.LoadServer(path, config.Options{})
	if err != nil || srv == nil {
		t.Fatalf("loading [server:main]: %v", err)
	}
	return srv
}

func TestServerSectionFillsUnsetOptions(t *testing.T) {
	srv := loadServerSection(t, `[server:main]
use = egg:Paste#http
host = 0.0.0.0
port = 8080
workers = 3
threads = 2
timeout = 2.5
max_requests = 100
queue_size = 7
pythonpath = /a /b
some_other_server_option = ignored
`)
	var o serveOptions
	o.workers = 9 // as if --workers 9 was given: the flag wins
	if err := applyServerSection(srv.LocalConf, &o, map[string]bool{"workers": true}); err != nil {
		t.Fatal(err)
	}
	if o.workers != 9 || o.threads != 2 || o.timeout != 2.5 || o.maxRequests != 100 || o.queueSize != 7 {
		t.Fatalf("options: %+v", o)
	}
	// pythonpath (like python and chdir) is internal/site's, for every command.
	if strings.Join(o.binds, ",") != "0.0.0.0:8080" || len(o.pythonPath) != 0 {
		t.Fatalf("binds %q, pythonpath %q", o.binds, o.pythonPath)
	}
}

func TestServerSectionBindWinsOverHostPort(t *testing.T) {
	srv := loadServerSection(t, "[server:main]\nuse = egg:Paste#http\nhost = 1.2.3.4\nport = 1\nbind = unix:/tmp/a.sock 127.0.0.1:0\n")
	var o serveOptions
	if err := applyServerSection(srv.LocalConf, &o, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.binds, " ") != "unix:/tmp/a.sock 127.0.0.1:0" {
		t.Fatalf("binds %q", o.binds)
	}
}

func TestServerSectionBadValueNamesItsPlace(t *testing.T) {
	srv := loadServerSection(t, "[server:main]\nuse = egg:Paste#http\nthreads = many\n")
	var o serveOptions
	err := applyServerSection(srv.LocalConf, &o, map[string]bool{})
	if err == nil {
		t.Fatal("threads = many was accepted")
	}
	if !strings.Contains(err.Error(), "site.ini:3 [server:main] threads") || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("error %q does not name file:line [section] option and the value", err)
	}
}

// Every flag of `wsgate serve` is documented in docs/serve.md.
func TestEveryServeFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "serve.md"))
	if err != nil {
		t.Fatal(err)
	}
	var o serveOptions
	serveFlags(&o).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(doc), "`--"+f.Name) {
			t.Errorf("--%s is not in docs/serve.md", f.Name)
		}
	})
}
