package config_test

import (
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

// TestRegisterNative: a `use` name claimed by a Go component is not asked
// of Python and says "go:NAME"; the Python nodes around it still resolve.
func TestRegisterNative(t *testing.T) {
	py := testutil.VenvPython(t)
	config.RegisterNative("egg:wsgate-test#native-filter", "test-filter", config.ProtocolFilter)
	dir := writeFiles(t, map[string]string{"a.ini": "[pipeline:main]\npipeline = gofilter app\n" +
		"[filter:gofilter]\nuse = egg:wsgate-test#native-filter\n" +
		"[app:app]\nuse = egg:twod.wsgi\n"})
	n, err := config.LoadApp("a.ini", config.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.Resolve(n, py, nil); err != nil {
		t.Fatal(err)
	}
	f := n.Filters[0]
	if f.Factory != "go:test-filter" || f.Protocol != config.ProtocolFilter {
		t.Errorf("native filter: factory %q protocol %q", f.Factory, f.Protocol)
	}
	if n.App.Factory != "wsgate.django.compat:make_twod_app" {
		t.Errorf("app factory %q", n.App.Factory)
	}
}
