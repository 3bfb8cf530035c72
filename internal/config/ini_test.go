package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/testutil"
)

// dumpINI renders a parsed file as "[section]" lines followed by
// "key = "value"" lines, [DEFAULT] first.
func dumpINI(f *iniFile) string {
	var b strings.Builder
	for _, sec := range append([]*iniSection{f.defaults}, f.sections...) {
		fmt.Fprintf(&b, "[%s]\n", sec.name)
		for _, o := range sec.opts {
			fmt.Fprintf(&b, "%s = %q\n", o.name, o.value)
		}
	}
	return b.String()
}

type parseCase struct {
	name    string
	in      string
	want    string // dumpINI output
	wantErr string // "LINE: substring" when the file must be refused
}

var parseCases = []parseCase{
	{"equals and colon", "[s]\na = 1\nb: 2\nc=3\nd:4\n", "[DEFAULT]\n[s]\na = \"1\"\nb = \"2\"\nc = \"3\"\nd = \"4\"\n", ""},
	{"keys keep case", "[s]\nKey = v\nkey = w\n", "[DEFAULT]\n[s]\nKey = \"v\"\nkey = \"w\"\n", ""},
	{"first delimiter splits", "[s]\nurl = http://x:80/?a=b\na:b = c\n", "[DEFAULT]\n[s]\nurl = \"http://x:80/?a=b\"\na = \"b = c\"\n", ""},
	{"empty value", "[s]\na =\nb=   \n", "[DEFAULT]\n[s]\na = \"\"\nb = \"\"\n", ""},
	{"whitespace trimmed", "[s]\n  a   =   spaced out   \n", "[DEFAULT]\n[s]\na = \"spaced out\"\n", ""},
	{"continuation", "[s]\na = one\n  two\n\tthree\nb = x\n", "[DEFAULT]\n[s]\na = \"one\\ntwo\\nthree\"\nb = \"x\"\n", ""},
	{"value on next line", "[s]\na =\n  one\n  two\n", "[DEFAULT]\n[s]\na = \"\\none\\ntwo\"\n", ""},
	{"blank lines inside values", "[s]\na = one\n\n  two\n\n\nb = x\n", "[DEFAULT]\n[s]\na = \"one\\n\\ntwo\"\nb = \"x\"\n", ""},
	{"comment lines dropped inside values", "[s]\na = one\n  # not part\n  ; nor this\n  two\n", "[DEFAULT]\n[s]\na = \"one\\ntwo\"\n", ""},
	{"no inline comments", "[s]\na = v # kept ; kept\n", "[DEFAULT]\n[s]\na = \"v # kept ; kept\"\n", ""},
	{"comments and blank lines", "# c\n; c\n\n[s]\n# c\n  ; indented comment\na = 1\n", "[DEFAULT]\n[s]\na = \"1\"\n", ""},
	{"indented option after blank is a continuation", "[s]\na = 1\n\n  b = 2\n", "[DEFAULT]\n[s]\na = \"1\\n\\nb = 2\"\n", ""},
	{"indented first option", "[s]\n  a = 1\n  b = 2\n", "[DEFAULT]\n[s]\na = \"1\"\nb = \"2\"\n", ""},
	{"deeper indent continues", "[s]\n  a = 1\n    more\n  b = 2\n", "[DEFAULT]\n[s]\na = \"1\\nmore\"\nb = \"2\"\n", ""},
	{"section header not stripped inside", "[ app:main ]\na = 1\n", "[DEFAULT]\n[ app:main ]\na = \"1\"\n", ""},
	{"text after header ignored", "[s] trailing\na = 1\n", "[DEFAULT]\n[s]\na = \"1\"\n", ""},
	{"header to last bracket", "[a]b]\nk = v\n", "[DEFAULT]\n[a]b]\nk = \"v\"\n", ""},
	{"DEFAULT", "[DEFAULT]\nx = 1\n[s]\ny = 2\n", "[DEFAULT]\nx = \"1\"\n[s]\ny = \"2\"\n", ""},
	{"DEFAULT twice merges", "[DEFAULT]\nx = 1\n[s]\n[DEFAULT]\ny = 2\n", "[DEFAULT]\nx = \"1\"\ny = \"2\"\n[s]\n", ""},
	{"CRLF and CR", "[s]\r\na = 1\r\n  2\rb = 3\r\n", "[DEFAULT]\n[s]\na = \"1\\n2\"\nb = \"3\"\n", ""},
	{"unicode", "[s]\nschlüssel = wert ✓\n", "[DEFAULT]\n[s]\nschlüssel = \"wert ✓\"\n", ""},
	{"percent kept raw", "[s]\na = %(x)s %%\n", "[DEFAULT]\n[s]\na = \"%(x)s %%\"\n", ""},
	{"empty file", "", "[DEFAULT]\n", ""},
	{"duplicate section", "[s]\na = 1\n[s]\nb = 2\n", "", "3: section appears twice"},
	{"duplicate option", "[s]\na = 1\na = 2\n", "", "3: option appears twice"},
	{"duplicate DEFAULT option", "[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n", "", "4: option appears twice"},
	{"option before header", "a = 1\n[s]\n", "", "1: comes before any [section]"},
	{"line without delimiter", "[s]\na = 1\njunk\n", "", "3: is neither a section header nor an option"},
	{"empty option name", "[s]\n= 1\n", "", "2: has no option name"},
	{"not UTF-8", "[s]\na = 1\nb = \xff\n", "", "3: is not UTF-8"},
	{"byte-order mark", "\ufeff[s]\na = 1\n", "", "1: comes before any [section]"},
}

func TestParseINI(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseINI("t.ini", []byte(c.in))
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed; want error %q. Got:\n%s", c.wantErr, dumpINI(f))
				}
				line, sub, _ := strings.Cut(c.wantErr, ": ")
				if !strings.HasPrefix(err.Error(), "t.ini:"+line+" ") && !strings.HasPrefix(err.Error(), "t.ini:"+line+":") {
					t.Errorf("error %q: want line %s", err, line)
				}
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("error %q: want %q", err, sub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dumpINI(f); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// configparserDump parses each input with Python's configparser exactly as
// PasteDeploy configures it (interpolation off, to see raw values) and
// dumps it like dumpINI, or returns "error" when configparser refuses it.
const configparserDump = `
import configparser, io, json, sys
out = []
for text in json.load(sys.stdin):
    p = configparser.ConfigParser(interpolation=None)
    p.optionxform = str
    try:
        p.read_file(io.StringIO(text, newline=None))
    except Exception:
        out.append("error")
        continue
    lines = []
    for name, opts in [("DEFAULT", p._defaults)] + list(p._sections.items()):
        lines.append("[%s]" % name)
        for k, v in opts.items():
            lines.append("%s = %s" % (k, json.dumps(v, ensure_ascii=False)))
    out.append("\n".join(lines) + "\n")
json.dump(out, sys.stdout)
`

// TestParseINIAgainstConfigparser proves the table above against Python's
// own configparser: every expectation must be what configparser does.
func TestParseINIAgainstConfigparser(t *testing.T) {
	py := testutil.VenvPython(t)
	var inputs []string
	for _, c := range parseCases {
		if strings.Contains(c.name, "UTF-8") {
			continue // not text: Python fails before configparser sees it
		}
		inputs = append(inputs, c.in)
	}
	in, _ := json.Marshal(inputs)
	cmd := exec.Command(py, "-c", configparserDump)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("configparser: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, c := range parseCases {
		if strings.Contains(c.name, "UTF-8") {
			continue
		}
		want := c.want
		if c.wantErr != "" {
			want = "error"
		}
		// json.dumps and %q agree on these strings except for escapes of
		// non-ASCII, which ensure_ascii=False leaves alone on both sides.
		if got[i] != want {
			t.Errorf("%s: configparser gives\n%s\nthe table says\n%s", c.name, got[i], want)
		}
		i++
	}
}

func TestInterpolate(t *testing.T) {
	vars := map[string]string{
		"here": "/srv", "a": "%(here)s/a", "b": "%(a)s/b", "loop": "%(loop)s", "pct": "100%%", "empty": "",
		"Case": "upper",
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for _, c := range []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"%(here)s", "/srv", ""},
		{"%(b)s!", "/srv/a/b!", ""},
		{"50%% off", "50% off", ""},
		{"%(pct)s", "100%", ""},
		{"[%(empty)s]", "[]", ""},
		{"%(Case)s", "upper", ""},
		{"%(case)s", "", "names no option"},
		{"%(missing)s", "", "%(missing)s names no option"},
		{"100%", "", "must be followed by"},
		{"%d", "", "must be followed by"},
		{"%(unclosed", "", "bad interpolation"},
		{"%(x)d", "", "bad interpolation"},
		{"%(loop)s", "", "deeper than 10"},
	} {
		got, err := interpolate(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("interpolate(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("interpolate(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
