// Package componenttest builds components from real INI text, as the compose
// step does, so a component's unit tests see the same located errors and
// option handling a user would.
package componenttest

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// Host is the smallest component.Host: a logger, no site, no apps.
type Host struct{ Log *slog.Logger }

func (h Host) App(name string) (http.Handler, error) {
	return nil, errors.New("componenttest: no applications here")
}
func (h Host) Site() component.Site { return nil }
func (h Host) Logger() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// Build writes ini as site.ini in a fresh directory, loads the [filter:NAME]
// or [app:NAME] section it names and builds it through the registry. It
// returns the directory (for files the INI refers to), the Built, and the
// error Build gave. A section whose `use` selects no component, or options
// the component did not read, fail the test: those are compose's errors,
// not the component's.
func Build(t testing.TB, h Host, dir, ini, name string, filter bool) (component.Built, error) {
	t.Helper()
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	load := config.LoadApp
	if filter {
		load = config.LoadFilter
	}
	n, err := load("config:"+path+"#"+name, config.Options{Dir: dir})
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	spec, ok := component.Lookup(n.Use)
	if !ok {
		t.Fatalf("%s: no component for use = %s", name, n.Use)
	}
	b := component.NewBuilder(n, h)
	built, err := spec.Build(b)
	if err == nil {
		if extra := b.Unread(); len(extra) > 0 {
			t.Fatalf("%s: options no getter read: %v", name, extra)
		}
	}
	return built, err
}
