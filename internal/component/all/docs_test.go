package all_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	_ "github.com/wsgate/wsgate/internal/component/all"
	"github.com/wsgate/wsgate/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite docs/components.md from the components' declarations")

// TestComponentsDocIsCurrent: docs/components.md is what the registered
// components declare. After changing a Spec: go test ./internal/component/all -update
func TestComponentsDocIsCurrent(t *testing.T) {
	path := filepath.Join(testutil.RepoRoot(), "docs", "components.md")
	want := component.RenderDocs(component.All())
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./internal/component/all -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/components.md is stale: run go test ./internal/component/all -update")
	}
}

// Every component's declaration is complete enough to document and to check
// options against.
func TestEverySpecIsDocumented(t *testing.T) {
	for _, s := range component.All() {
		if s.Summary == "" || s.Doc == "" {
			t.Errorf("%s: Summary and Doc are the user's documentation; both are needed", s.Name)
		}
		for _, o := range s.Options {
			if o.Name == "" || o.Type == "" || o.Help == "" {
				t.Errorf("%s: option %+v lacks a name, type or help", s.Name, o)
			}
		}
	}
}
