package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseINI feeds arbitrary bytes to the configparser-compatible parser:
// it must never panic, and what it accepts must be consistent (every option
// on a line of the input, no option name with surrounding space or a
// delimiter). Seeds: testdata/fuzz/FuzzParseINI (run only as tests by
// `go test`; explore with `go test -fuzz FuzzParseINI ./internal/config`).
func FuzzParseINI(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseINI("fuzz.ini", data)
		if err != nil {
			requireOneLineError(t, err)
			return
		}
		lines := len(splitLines(string(data)))
		for _, sec := range append([]*iniSection{file.defaults}, file.sections...) {
			for _, o := range sec.opts {
				if o.line < 1 || o.line > lines {
					t.Fatalf("option %q on line %d of %d", o.name, o.line, lines)
				}
				if o.name == "" || o.name != pyStrip(o.name) || strings.ContainsAny(o.name, "=:") {
					t.Fatalf("bad option name %q", o.name)
				}
				if o.value != pyStrip(o.value) && o.value != strings.TrimLeft(o.value, "\n") {
					// a value may start with "\n" (value on the next line) but never ends with space
					if pyRStrip(o.value) != o.value {
						t.Fatalf("value %q has trailing space", o.value)
					}
				}
			}
		}
	})
}

// FuzzLoad loads arbitrary bytes as a whole configuration (sections, use
// chains, pipelines, includes of itself): never a panic, never an endless
// recursion, and every failure a one-line *Error.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/diff/*.ini")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data, "main")
		}
	}
	f.Add([]byte("[app:main]\nuse = config:self.ini\n"), "main")
	f.Add([]byte("[composite:main]\nuse = egg:Paste#urlmap\n/ = main\n"), "main")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		if strings.ContainsAny(name, "#\x00") {
			return
		}
		p := filepath.Join(dir, "self.ini")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := LoadApp("self.ini#"+name, Options{Dir: dir})
		if err != nil {
			requireOneLineError(t, err)
			return
		}
		if _, err := n.ContractJSON(); err != nil {
			t.Fatal(err)
		}
		if _, err := n.WorkerJSON(); err != nil {
			t.Fatal(err)
		}
	})
}

// requireOneLineError: every configuration mistake is a *Error of one line.
func requireOneLineError(t *testing.T, err error) {
	t.Helper()
	if _, ok := err.(*Error); !ok {
		t.Fatalf("error %T is not a *Error: %v", err, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error spans lines: %q", err)
	}
}
