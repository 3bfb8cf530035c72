// Package componenttest builds Go components from INI text, the way a site
// loads them, for the components' unit tests: option errors then carry the
// real "file:line [section] option" location.
package componenttest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/config"
)

// Build writes ini to site.ini in a fresh temporary directory, loads the
// section that name names (a filter or an application, as
// `[filter:NAME]`/`[app:NAME]` say) and builds it through the registry. An
// option the component did not read is an error, as it is at load.
func Build(t testing.TB, ini, name string) (component.Built, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "site.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	load := config.LoadApp
	if strings.Contains(ini, "[filter:"+name+"]") {
		load = config.LoadFilter
	}
	n, err := load("config:"+path+"#"+name, config.Options{Dir: dir})
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	spec, ok := component.Lookup(n.Use)
	if !ok {
		t.Fatalf("no component is registered for use = %s", n.Use)
	}
	b := component.NewBuilder(n, nil)
	built, err := spec.Build(b)
	if err != nil {
		return built, err
	}
	if unread := b.Unread(); len(unread) > 0 {
		return built, fmt.Errorf("%s: options no component reads: %s", b.Section(), strings.Join(unread, ", "))
	}
	if built.Close != nil {
		t.Cleanup(func() { _ = built.Close() })
	}
	return built, nil
}

// MustWrap builds a filter that must build, and wraps next with it.
func MustWrap(t testing.TB, ini, name string, next http.Handler) http.Handler {
	t.Helper()
	built, err := Build(t, ini, name)
	if err != nil {
		t.Fatal(err)
	}
	if built.Wrap == nil {
		t.Fatalf("%s is not a filter", name)
	}
	return built.Wrap(next)
}
