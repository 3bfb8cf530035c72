package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every setting of the table has its row in docs/serve.md, flag and key.
func TestSettingsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "serve.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		row := "| `--" + s.Flag
		i := strings.Index(string(doc), row)
		if i < 0 {
			t.Errorf("docs/serve.md has no row for --%s", s.Flag)
			continue
		}
		line, _, _ := strings.Cut(string(doc[i:]), "\n")
		cols := strings.Split(strings.ReplaceAll(line, "\\|", "/"), "|")[1:] // before the first | is nothing
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if len(cols) < 4 {
			t.Errorf("docs/serve.md: the row of --%s is not flag | key | default | meaning: %s", s.Flag, line)
			continue
		}
		if !strings.HasPrefix(cols[1], "`"+s.Key+"`") {
			t.Errorf("docs/serve.md: the row of --%s names the key %s, want %s", s.Flag, cols[1], s.Key)
		}
		if got := strings.ReplaceAll(cols[2], "`", ""); got != s.Default {
			t.Errorf("docs/serve.md: --%s defaults to %q there, %q in server.Settings", s.Flag, got, s.Default)
		}
	}
}

// A setting reads the same from the command line and the file.
func TestSettingsParse(t *testing.T) {
	var c Config
	set := func(flag, v string) error {
		for _, s := range Settings {
			if s.Flag == flag {
				return s.Set(&c, v)
			}
		}
		t.Fatalf("no setting --%s", flag)
		return nil
	}
	if err := set("acme-domains", "a.example, b.example"); err != nil {
		t.Fatal(err)
	}
	if err := set("acme-domains", "c.example"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.ACMEDomains, " "); got != "a.example b.example c.example" {
		t.Errorf("acme_domains %q", got)
	}
	if err := set("http3", "yes"); err != nil || !c.HTTP3 {
		t.Errorf("http3 = yes: %v %v", c.HTTP3, err)
	}
	if err := set("h2c", "sometimes"); err == nil {
		t.Error("h2c = sometimes accepted")
	}
	if err := set("cert-reqs", "always"); err == nil || !strings.Contains(err.Error(), "none, optional, required") {
		t.Errorf("cert_reqs = always: %v", err)
	}
	for _, bad := range []Config{
		{CertFile: "c"},
		{CertFile: "c", KeyFile: "k", ACMEDomains: []string{"a"}},
		{HTTP3: true},
		{RedirectHTTP: ":80"},
		{CertFile: "c", KeyFile: "k", CertReqs: "required"},
		{Group: "nogroup"},
	} {
		if bad.Check() == nil {
			t.Errorf("%+v passed Check", bad)
		}
	}
}
