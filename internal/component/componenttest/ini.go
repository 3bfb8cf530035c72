package componenttest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// BuildINI writes ini as site.ini in dir, loads its [filter:NAME] (filter
// true) or application NAME as a site does, and builds it through the
// registry: errors are located at the file's real lines, and files the
// options name are found next to it (here). Options the component did not
// read fail the test, as compose refuses them.
func BuildINI(t testing.TB, h component.Host, dir, ini, name string, filter bool) (component.Built, error) {
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
		if built.Close != nil {
			t.Cleanup(func() { _ = built.Close() })
		}
	}
	return built, err
}
