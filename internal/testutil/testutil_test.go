package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// directSkip is a call of testing's Skip, Skipf or SkipNow on anything but
// this package: such a skip would pass `make test` unnoticed.
var directSkip = regexp.MustCompile(`\b(\w+)\.Skip(f|Now)?\(`)

// TestNoDirectSkip keeps every Go test of the repository on Skip, the one
// path that fails under WSGATE_TEST_STRICT=1 unless the reason is allowed.
func TestNoDirectSkip(t *testing.T) {
	root := RepoRoot()
	self := filepath.Join(root, "internal", "testutil")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == self || (path != root && strings.HasPrefix(d.Name(), ".")) {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(src), "\n") {
			for _, m := range directSkip.FindAllStringSubmatch(line, -1) {
				if m[1] != "testutil" {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s:%d: %s: skip with testutil.Skip, which fails under `make test` unless test/skips-allowed.txt allows the reason", rel, i+1, strings.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadAllowedSkips(t *testing.T) {
	if _, err := ReadAllowedSkips(AllowedSkipsFile); err != nil {
		t.Fatalf("the real list: %v", err)
	}
	for _, c := range []struct{ text, want string }{
		{"# comment\n\nskip: chromium missing\nwhy: no browser on this platform\n", ""},
		{"skip: a\n", ":1: `skip:` without a `why:`"},
		{"skip: a\nskip: b\nwhy: c\n", ":2: expected `why: …`"},
		{"why: c\n", ":1: expected `skip: …`"},
		{"skip: a\nwhy:\n", ":2: expected `why: …`"},
	} {
		path := filepath.Join(t.TempDir(), "allowed.txt")
		if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadAllowedSkips(path)
		switch {
		case c.want == "" && (err != nil || len(got) != 1 || got[0] != "chromium missing"):
			t.Errorf("%q: got %q, %v", c.text, got, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one containing %q", c.text, err, c.want)
		}
	}
	if !SkipAllowed("chromium missing: /usr/bin/chromium", []string{"chromium missing"}) ||
		SkipAllowed("curl missing", []string{"chromium missing"}) || SkipAllowed("anything", nil) {
		t.Error("SkipAllowed does not match reasons by their start")
	}
}
