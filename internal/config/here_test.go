package config_test

import (
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

// TestHereAndFileInGlobalConf: as in PasteDeploy, global_conf's here and
// __file__ are the top file's even in an included section (the including
// global_conf wins), a [DEFAULT] here overrides the computed one, and the
// included file's own %(here)s still means its own directory.
func TestHereAndFileInGlobalConf(t *testing.T) {
	dir, _ := filepath.Abs("testdata/diff")
	for _, c := range []struct{ file, here, fileVar, localKey, localWant string }{
		{"21_include_chain.ini", dir, filepath.Join(dir, "21_include_chain.ini"), "where", filepath.Join(dir, "inc", "deeper")},
		{"56_here_override.ini", "/custom/place", filepath.Join(dir, "56_here_override.ini"), "path", "/custom/place/data"},
	} {
		n, err := config.LoadApp(c.file, config.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		here, _ := n.GlobalConf.Get("here")
		file, _ := n.GlobalConf.Get("__file__")
		local, _ := n.LocalConf.Get(c.localKey)
		if here != c.here || file != c.fileVar || local != c.localWant {
			t.Errorf("%s: here %q __file__ %q %s %q; want %q %q %q", c.file, here, file, c.localKey, local, c.here, c.fileVar, c.localWant)
		}
	}
}
