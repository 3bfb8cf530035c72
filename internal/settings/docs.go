package settings

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// The table of docs/serve.md sits between these lines; the rest of the
// page is written by hand.
const (
	BeginMarker = "<!-- settings: generated from internal/settings/table.go; edit there, then run `go test ./internal/settings -update` -->"
	EndMarker   = "<!-- end of settings -->"
)

// Markdown is the table of every setting: flag, key, default, meaning.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| flag | `[server:…]` key | default | meaning |\n| --- | --- | --- | --- |\n")
	for _, s := range Table {
		flagCell := "`--" + s.Flag
		if s.Arg != "" {
			flagCell += " " + strings.ReplaceAll(s.Arg, "|", "\\|")
		}
		flagCell += "`"
		if s.list() {
			flagCell += " (repeatable)"
		}
		key := ""
		if s.Key != "" {
			key = "`" + s.Key + "`"
			if s.KeyNote != "" {
				key += " " + s.KeyNote
			}
		}
		def := s.DefaultDoc
		if def == "" {
			def = s.Default
		}
		doc := s.Doc
		if s.Env != "" {
			doc += fmt.Sprintf(" (environment: `%s`)", s.Env)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", flagCell, key, def, doc)
	}
	return b.String()
}

// RenderInto replaces the table between the markers of page.
func RenderInto(page []byte) ([]byte, error) {
	begin := bytes.Index(page, []byte(BeginMarker))
	end := bytes.Index(page, []byte(EndMarker))
	if begin < 0 || end < begin {
		return nil, errors.New("the settings markers are missing")
	}
	var out bytes.Buffer
	out.Write(page[:begin+len(BeginMarker)])
	out.WriteString("\n\n" + Markdown() + "\n")
	out.Write(page[end:])
	return out.Bytes(), nil
}
