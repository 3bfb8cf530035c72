package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/testutil"
	"github.com/wsgate/wsgate/python"
)

// diffCase is one `#! case NAME [type=server|filter] [path=/x] [set=k=v]…
// [error=substring] [paste-broken]` line of a testdata/diff/*.ini file. Backslash-escaped
// spaces belong to the value.
type diffCase struct {
	ID          int               `json:"id"`
	File        string            `json:"file"` // absolute
	Name        string            `json:"name"`
	ObjectType  string            `json:"object_type"`
	GlobalConf  map[string]string `json:"global_conf"`
	Path        string            `json:"path,omitempty"`
	Worker      json.RawMessage   `json:"worker,omitempty"`
	contract    []byte            // in-process ContractJSON, for servers and filters
	rel         string
	wantErr     string
	pasteBroken bool
}

func (c diffCase) label() string {
	s := c.rel + "#" + c.Name
	if c.ObjectType != "application" {
		s += " " + c.ObjectType
	}
	keys := make([]string, 0, len(c.GlobalConf))
	for k := range c.GlobalConf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s += " set " + k + "=" + c.GlobalConf[k]
	}
	if c.Path != "" {
		s += " path " + c.Path
	}
	return s
}

func splitEscaped(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ' ':
			cur.WriteByte(' ')
			i++
		case s[i] == ' ':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(s[i])
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func readDiffCases(t *testing.T, dir string) []diffCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.ini"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []diffCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimRight(line, "\r")
			if !strings.HasPrefix(line, "#! case ") {
				continue
			}
			fields := splitEscaped(strings.TrimPrefix(line, "#! case "))
			c := diffCase{ID: len(cases), File: f, rel: filepath.Base(f), Name: fields[0], ObjectType: "application", GlobalConf: map[string]string{}}
			for _, fld := range fields[1:] {
				k, v, _ := strings.Cut(fld, "=")
				switch k {
				case "path":
					c.Path = v
				case "type":
					c.ObjectType = v
				case "set":
					sk, sv, _ := strings.Cut(v, "=")
					c.GlobalConf[sk] = sv
				case "error":
					c.wantErr = v
				case "paste-broken":
					c.pasteBroken = true
				default:
					t.Fatalf("%s: unknown case field %q", f, fld)
				}
			}
			cases = append(cases, c)
		}
	}
	return cases
}

type oracleResult struct {
	ID            int             `json:"id"`
	Error         string          `json:"error"`
	Tree          json.RawMessage `json:"tree"`
	WorkerTree    json.RawMessage `json:"worker_tree"`
	Response      string          `json:"response"`
	ResponseError string          `json:"response_error"`
}

// runOracle runs testdata/oracle.py in the given mode over all cases.
func runOracle(t *testing.T, py, mode string, pythonPath []string, cases []diffCase) map[int]oracleResult {
	t.Helper()
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/oracle.py", mode)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+strings.Join(pythonPath, string(os.PathListSeparator)))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("oracle.py %s: %v\n%s", mode, err, stderr.String())
	}
	var results []oracleResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("oracle.py %s output: %v\n%s", mode, err, stdout.String())
	}
	out := map[int]oracleResult{}
	for _, r := range results {
		out[r.ID] = r
	}
	return out
}

// canonical re-encodes JSON keeping key order and leaving out the keys in
// drop at every depth.
func canonical(data []byte, drop ...string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	skip := map[string]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	if err := canonValue(dec, &b, skip); err != nil {
		return "", err
	}
	return b.String(), nil
}

func canonValue(dec *json.Decoder, b *strings.Builder, skip map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			b.WriteString("{")
			first := true
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key := kt.(string)
				if skip[key] {
					var raw json.RawMessage
					if err := dec.Decode(&raw); err != nil {
						return err
					}
					continue
				}
				if !first {
					b.WriteString(", ")
				}
				first = false
				kb, _ := json.Marshal(key)
				b.Write(kb)
				b.WriteString(": ")
				if err := canonValue(dec, b, skip); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			b.WriteString("}")
			return err
		case '[':
			b.WriteString("[")
			first := true
			for dec.More() {
				if !first {
					b.WriteString(", ")
				}
				first = false
				if err := canonValue(dec, b, skip); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			b.WriteString("]")
			return err
		}
	}
	vb, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	b.Write(vb)
	return nil
}

// TestDifferentialAgainstPasteDeploy loads every case of testdata/diff
// through `wsgate check --json` and through the real PasteDeploy 3
// (loadcontext), and requires the same tree; then builds the application
// from wsgate's worker form with wsgate.loader and from PasteDeploy's
// context, calls each once, and requires the same response.
func TestDifferentialAgainstPasteDeploy(t *testing.T) {
	py := testutil.VenvPython(t)
	bin := testutil.Binary(t)
	dir, err := filepath.Abs("testdata/diff")
	if err != nil {
		t.Fatal(err)
	}
	fake, _ := filepath.Abs("testdata/fakepkgs")
	runtimeDir, err := python.Unpack()
	if err != nil {
		t.Fatal(err)
	}
	cases := readDiffCases(t, dir)
	if len(cases) < 30 {
		t.Fatalf("the differential corpus has %d cases; it should have at least 30", len(cases))
	}
	files := map[string]bool{}
	for _, c := range cases {
		files[c.File] = true
	}
	if len(files) < 30 {
		t.Fatalf("the differential corpus has %d configs; it should have at least 30", len(files))
	}

	// wsgate: the worker form, in-process, for the loader half; one
	// interpreter run resolves every case.
	var trees []*config.Node
	var owners []*diffCase
	for i := range cases {
		c := &cases[i]
		load := map[string]func(string, config.Options) (*config.Node, error){
			"application": config.LoadApp, "server": config.LoadServer, "filter": config.LoadFilter,
		}[c.ObjectType]
		n, err := load(c.File+"#"+c.Name, config.Options{Overrides: c.GlobalConf, Dir: dir})
		if err == nil && n != nil {
			trees = append(trees, n)
			owners = append(owners, c)
		}
	}
	errs, err := config.ResolveEach(trees, py, []string{fake})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range trees {
		if errs[i] == nil {
			if owners[i].Worker, err = n.WorkerJSON(); err != nil {
				t.Fatal(err)
			}
			if owners[i].contract, err = n.ContractJSON(); err != nil {
				t.Fatal(err)
			}
		}
	}
	paste := runOracle(t, py, "paste", []string{fake}, cases)
	var loadable []diffCase
	for _, c := range cases {
		if c.Worker != nil && c.ObjectType == "application" {
			loadable = append(loadable, c)
		}
	}
	ours := runOracle(t, py, "wsgate", []string{runtimeDir, fake}, loadable)

	var goServed atomic.Int64
	t.Cleanup(func() {
		// The corpus mounts Paste's urlmap: the comparison of Go-served
		// nodes must have run.
		if !t.Failed() && goServed.Load() == 0 {
			t.Errorf("no case has a node served by Go: the go: comparison did not run")
		}
	})
	for _, c := range cases {
		t.Run(c.label(), func(t *testing.T) {
			t.Parallel()
			if c.ObjectType != "application" {
				compareOther(t, c, paste[c.ID])
				return
			}
			args := []string{"check", "--json", "--python", py}
			for k, v := range c.GlobalConf {
				args = append(args, "--set", k+"="+v)
			}
			args = append(args, c.rel+"#"+c.Name)
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PYTHONPATH="+fake)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			p := paste[c.ID]
			if c.wantErr != "" {
				if runErr == nil {
					t.Fatalf("wsgate check accepted it; want an error containing %q\n%s", c.wantErr, stdout.String())
				}
				if code := cmd.ProcessState.ExitCode(); code != 1 {
					t.Errorf("exit code %d, want 1", code)
				}
				msg := strings.TrimSpace(stderr.String())
				if !strings.Contains(msg, c.wantErr) || strings.Count(msg, "\n") > 0 {
					t.Errorf("error %q: want one line containing %q", msg, c.wantErr)
				}
				if !strings.HasPrefix(msg, "wsgate check: ") || strings.Contains(msg, "Traceback") {
					t.Errorf("error %q is not a wsgate one-liner", msg)
				}
				if p.Error == "" && p.ResponseError == "" {
					t.Errorf("PasteDeploy accepted it (response %q) but wsgate refused: %s", p.Response, msg)
				}
				return
			}
			if runErr != nil {
				t.Fatalf("wsgate check failed: %v\n%s\nPasteDeploy: %+v", runErr, stderr.String(), p)
			}
			if p.Error != "" {
				t.Fatalf("PasteDeploy refused it (%s) but wsgate accepted it", p.Error)
			}
			out, served := pythonTwins(t, stdout.Bytes())
			goServed.Add(int64(served))
			// Apart from the factories of the Go-served nodes, the binary's
			// tree is the one resolved in-process by Python, `use` included.
			if gotAll, _ := canonical(out, "source"); served > 0 {
				if inProcess, _ := canonical(c.contract, "source"); gotAll != inProcess {
					t.Errorf("with its Go nodes put back, the tree differs from Python's resolution\nwsgate check: %s\nin-process:   %s", gotAll, inProcess)
				}
			}
			got, err := canonical(out, "use", "source")
			if err != nil {
				t.Fatalf("wsgate output is not JSON: %v\n%s", err, stdout.String())
			}
			want, err := canonical(p.Tree)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("trees differ\nwsgate:      %s\nPasteDeploy: %s", got, want)
			}
			// The worker form is the same tree with here and __file__ kept.
			gotWorker, err := canonical(c.Worker, "use", "source", "global_conf_sources", "local_conf_sources", "loadable")
			if err != nil {
				t.Fatal(err)
			}
			if wantWorker, _ := canonical(p.WorkerTree); gotWorker != wantWorker {
				t.Errorf("worker forms differ\nwsgate:      %s\nPasteDeploy: %s", gotWorker, wantWorker)
			}
			o, ok := ours[c.ID]
			if !ok {
				t.Fatalf("no worker form was built")
			}
			if c.pasteBroken {
				if p.ResponseError == "" {
					t.Errorf("expected PasteDeploy to build an unusable application here; it answered %q", p.Response)
				}
				if o.ResponseError != "" {
					t.Errorf("wsgate.loader failed: %s", o.ResponseError)
				}
				return
			}
			if p.ResponseError != "" || o.ResponseError != "" || o.Response != p.Response {
				t.Errorf("responses differ\nwsgate.loader: %q %s\nPasteDeploy:   %q %s", o.Response, o.ResponseError, p.Response, p.ResponseError)
			}
		})
	}
	t.Logf("differential: %d cases from %d configs", len(cases), len(files))
	requireDocumentedCounts(t, len(files), len(cases))
}

// requireDocumentedCounts keeps docs/config.md's figures for this test true:
// a case added here without the page changing fails.
func requireDocumentedCounts(t *testing.T, configs, cases int) {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("A test loads %d configurations (%d cases,", configs, cases)
	if !bytes.Contains(page, []byte(want)) {
		m := regexp.MustCompile(`A test loads \d+ configurations \(\d+ cases,`).Find(page)
		t.Errorf("docs/config.md says %q; the differential corpus is %q", m, want)
	}
}

// goTwins maps each Go factory that stands in for a Paste one to the
// Python factory PasteDeploy loads for the same `use`. The test binary of
// this package registers no Go component, so the in-process resolution is
// Python's; `wsgate check` (which links every component) prints go:NAME.
var goTwins = map[string]string{
	"go:urlmap": "paste.urlmap:urlmap_factory",
}

// pythonTwins puts back, in wsgate check's JSON, the Python factory of every
// Go-served node, and counts them; a go: factory without a twin fails. The
// comparisons that follow then check each stands where PasteDeploy loaded
// its twin.
func pythonTwins(t *testing.T, out []byte) ([]byte, int) {
	t.Helper()
	served := 0
	s := string(out)
	for goFactory, py := range goTwins {
		field := `"factory": "` + goFactory + `"`
		served += strings.Count(s, field)
		s = strings.ReplaceAll(s, field, `"factory": "`+py+`"`)
	}
	if i := strings.Index(s, `"factory": "go:`); i >= 0 {
		t.Errorf("a Go factory with no Python twin in this test: %s", s[i:min(len(s), i+60)])
	}
	return []byte(s), served
}

// compareOther compares a server or filter case, loaded in-process (check
// prints applications only), with PasteDeploy's context.
func compareOther(t *testing.T, c diffCase, p oracleResult) {
	if p.Error != "" || c.Worker == nil {
		t.Fatalf("PasteDeploy: %q; wsgate loaded it: %v", p.Error, c.Worker != nil)
	}
	got, err := canonical(c.contract, "use", "source")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := canonical(p.Tree); got != want {
		t.Errorf("trees differ\nwsgate:      %s\nPasteDeploy: %s", got, want)
	}
	got, _ = canonical(c.Worker, "use", "source", "global_conf_sources", "local_conf_sources", "loadable")
	if want, _ := canonical(p.WorkerTree); got != want {
		t.Errorf("worker forms differ\nwsgate:      %s\nPasteDeploy: %s", got, want)
	}
}
