package component

import (
	"bytes"
	"fmt"
	"strings"
)

// RenderDocs renders docs/components.md from the components' own
// declarations (Spec: Summary, Doc, Options, Ignored, Sees). The test in
// internal/component/all fails when the file is stale; `go test
// ./internal/component/all -update` rewrites it.
func RenderDocs(specs []*Spec) []byte {
	var b bytes.Buffer
	b.WriteString("# Go components\n\n")
	b.WriteString("<!-- Generated from each component's declaration (internal/component/NAME/); do not edit here: edit the\n")
	b.WriteString("     Spec, then run `go test ./internal/component/all -update`. -->\n\n")
	b.WriteString("wsgate's Go components run in the master, around the Python workers, configured in the same INI file as the\n")
	b.WriteString("application: `use = egg:wsgate#NAME` in an `[app:…]`, `[filter:…]` or `[composite:…]` section (Paste's names\n")
	b.WriteString("listed as aliases keep working unchanged). How they compose with Python applications and filters, and which\n")
	b.WriteString("worker pool serves what, is in docs/serve.md (\"Go components and worker pools\"); `wsgate check` shows it for a\n")
	b.WriteString("given file. An option a component does not declare is a configuration error naming `file:line [section] option`.\n\n")
	b.WriteString("Each component declares what it must see of an exchange. Where nothing on a route needs the response body, a\n")
	b.WriteString("worker's response goes to the client untouched (the fast path); `check` prints, per route, the largest.\n\n")
	b.WriteString("| component | role | sees | what it does |\n| --- | --- | --- | --- |\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s | %s |\n", s.Name, s.Name, s.Role, s.Sees, cell(s.Summary))
	}
	for _, s := range specs {
		fmt.Fprintf(&b, "\n## %s\n\n", s.Name)
		uses := s.Uses()
		for i, u := range uses {
			uses[i] = "`use = " + u + "`"
		}
		fmt.Fprintf(&b, "%s — a %s; sees %s.\n\n", strings.Join(uses, " or "), s.Role, seesText(s.Sees))
		b.WriteString(strings.TrimSpace(s.Summary) + "\n")
		if doc := strings.TrimSpace(s.Doc); doc != "" {
			b.WriteString("\n" + doc + "\n")
		}
		if len(s.Options) > 0 {
			b.WriteString("\n| option | type | default | meaning |\n| --- | --- | --- | --- |\n")
			for _, o := range s.Options {
				def := "`" + o.Default + "`"
				switch {
				case o.Required:
					def = "required"
				case o.Default == "":
					def = ""
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.Name, o.Type, def, cell(o.Help))
			}
		} else {
			b.WriteString("\nNo options.\n")
		}
		if len(s.Ignored) > 0 {
			fmt.Fprintf(&b, "\nAccepted and ignored (they mean nothing here): `%s`.\n", strings.Join(s.Ignored, "`, `"))
		}
	}
	return b.Bytes()
}

func seesText(s Sees) string {
	switch s {
	case SeesRequest:
		return "the request only (the fast path stays)"
	case SeesResponseHead:
		return "the response's status and headers, not its body (the fast path stays)"
	case SeesResponseBody:
		return "the response body: on its routes the master reads every response (no fast path)"
	}
	return s.String()
}

// cell keeps a text on one table row.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), "\n", " "), "|", "\\|")
}
