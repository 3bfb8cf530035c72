package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// TestGolden resolves each `#! golden NAME` of testdata/golden/*.ini and
// compares ContractJSON (with "use" and "source") with
// testdata/golden/FILE#NAME.json. The testdata directory is written
// $TESTDATA there, so the files hold no machine's paths.
func TestGolden(t *testing.T) {
	py := testutil.VenvPython(t)
	testdata, _ := filepath.Abs("testdata")
	fake := filepath.Join(testdata, "fakepkgs")
	files, _ := filepath.Glob(filepath.Join(testdata, "golden", "*.ini"))
	// PasteDeploy's documentation examples live in the differential corpus.
	docs, _ := filepath.Glob(filepath.Join(testdata, "diff", "5[01]_*.ini"))
	files = append(files, docs...)
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			name, ok := strings.CutPrefix(line, "#! golden ")
			if !ok {
				continue
			}
			n++
			rel, _ := filepath.Rel(testdata, f)
			t.Run(rel+"#"+name, func(t *testing.T) {
				node, err := config.LoadApp(rel+"#"+name, config.Options{Dir: testdata})
				if err != nil {
					t.Fatal(err)
				}
				if err := config.Resolve(node, py, []string{fake}); err != nil {
					t.Fatal(err)
				}
				got, err := node.ContractJSON()
				if err != nil {
					t.Fatal(err)
				}
				worker, err := node.WorkerJSON()
				if err != nil {
					t.Fatal(err)
				}
				var indented bytes.Buffer
				if err := json.Indent(&indented, worker, "", "  "); err != nil {
					t.Fatal(err)
				}
				base := filepath.Join(testdata, "golden", strings.TrimSuffix(filepath.Base(f), ".ini")+"#"+name)
				compareGolden(t, base+".json", got, testdata)
				compareGolden(t, base+".worker.json", append(indented.Bytes(), '\n'), testdata)
			})
		}
	}
	if n < 5 {
		t.Fatalf("only %d golden cases", n)
	}
}

// compareGolden compares got (with the testdata directory written
// $TESTDATA) with the golden file, rewriting it under -update.
func compareGolden(t *testing.T, golden string, got []byte, testdata string) {
	t.Helper()
	got = bytes.ReplaceAll(got, []byte(testdata), []byte("$TESTDATA"))
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s:\n%s", golden, got)
	}
}
