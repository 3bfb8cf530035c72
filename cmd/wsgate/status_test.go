package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/gateway"
)

// The default control socket is the site's own: the same arguments give the
// same path, another file or another --app another one; "off" gives none.
func TestDefaultControlSocketIsPerSite(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	a, _ := controlPath("", "site.ini", "")
	again, _ := controlPath("", "config:site.ini#main", "")
	other, _ := controlPath("", "site.ini#admin", "")
	app, _ := controlPath("", "", "mod:app")
	off, _ := controlPath("off", "site.ini", "")
	if filepath.Dir(a) != "/run/user/1000/wsgate" || !strings.HasPrefix(filepath.Base(a), "site-") {
		t.Errorf("default path %s is not $XDG_RUNTIME_DIR/wsgate/site-HASH.sock", a)
	}
	if a != again || a == other || a == app || off != "" {
		t.Errorf("paths: %s, %s (same site), %s (#admin), %s (--app), %q (off)", a, again, other, app, off)
	}
}

func TestStatusTableShowsEachThreadsRequest(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, []gateway.PoolStatus{{Name: "main", App: "site.ini [app:main]", Generation: 2, Workers: 1, Threads: 2, Ready: 1,
		Live: []gateway.WorkerStatus{{ID: 3, PID: 4242, State: "ready", Generation: 2, RSS: 50 << 20, Served: 7,
			Requests: []gateway.RequestInfo{{Method: "GET", URI: "/a", AgeSec: 1.25}, {Method: "POST", URI: "/b", RequestID: "r1", AgeSec: 0.5}}}}}})
	for _, want := range []string{"pool main (site.ini [app:main]): generation 2", "4242", "50.0M", "GET /a", "1.2s", "POST /b [r1]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
