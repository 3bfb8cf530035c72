package testutil

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// AllowedSkipsFile lists the skip reasons `make test` accepts, each with why;
// test/strictskips.py reads the same file for the pytest runs.
var AllowedSkipsFile = filepath.Join(RepoRoot(), "test", "skips-allowed.txt")

// Skip is the only way a Go test of this project skips: outside `make test` it
// is t.Skip; under it (WSGATE_TEST_STRICT=1) it fails the test unless the
// reason starts with an entry of test/skips-allowed.txt, so CI can never pass
// by skipping. TestNoDirectSkip keeps every test on this path.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if !strict() {
		t.Skip(reason)
	}
	entries, err := ReadAllowedSkips(AllowedSkipsFile)
	if err != nil {
		t.Fatalf("skipping (%s): %v", reason, err)
	}
	if !SkipAllowed(reason, entries) {
		t.Fatalf("skipped under WSGATE_TEST_STRICT=1 for a reason not on test/skips-allowed.txt:\n    %s\n"+
			"Make the test run (install what it needs), or add the reason there with a why.", reason)
	}
	t.Skip(reason)
}

// SkipAllowed reports whether an entry of the allow-list starts the reason.
func SkipAllowed(reason string, entries []string) bool {
	for _, e := range entries {
		if strings.HasPrefix(reason, e) {
			return true
		}
	}
	return false
}

// ReadAllowedSkips returns the `skip:` reasons of an allow-list file, refusing
// an entry without its `why:` line.
func ReadAllowedSkips(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the skip allow-list: %w", err)
	}
	defer f.Close()
	var allowed []string
	pending, pendingLine := "", 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch {
		case key == "skip" && pending == "" && value != "":
			pending, pendingLine = value, n
		case key == "why" && pending != "" && value != "":
			allowed, pending = append(allowed, pending), ""
		case pending != "":
			return nil, fmt.Errorf("%s:%d: expected `why: …`", path, n)
		default:
			return nil, fmt.Errorf("%s:%d: expected `skip: …`", path, n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the skip allow-list: %w", err)
	}
	if pending != "" {
		return nil, fmt.Errorf("%s:%d: `skip:` without a `why:` line after it", path, pendingLine)
	}
	return allowed, nil
}
