package config

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads INI files exactly as Python's configparser.ConfigParser
// does with PasteDeploy's settings (strict, '=' and ':' delimiters, '#' and
// ';' whole-line comments only, empty lines kept inside values, keys case
// kept, BasicInterpolation). The rules are listed in docs/config.md; each
// one below says which configparser behaviour it reproduces.

// defaultSection is configparser's DEFAULTSECT.
const defaultSection = "DEFAULT"

type iniOption struct {
	name  string
	value string
	line  int
}

type iniSection struct {
	name   string
	line   int
	opts   []*iniOption
	byName map[string]*iniOption
}

func newSection(name string, line int) *iniSection {
	return &iniSection{name: name, line: line, byName: map[string]*iniOption{}}
}

// iniFile is one parsed file, values raw (not interpolated).
type iniFile struct {
	display  string
	defaults *iniSection // [DEFAULT]; line 0 when the file has none
	sections []*iniSection
	byName   map[string]*iniSection
}

// pyIsSpace is Python's str.isspace for one character: Unicode White_Space
// plus the ASCII separators \x1c-\x1f, which Go does not count as space.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pyIsSpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// pyFields is Python's str.split() without arguments.
func pyFields(s string) []string { return strings.FieldsFunc(s, pyIsSpace) }

// splitLines splits as Python's universal-newline text mode does: "\r\n",
// "\r" and "\n" end a line, nothing else does.
func splitLines(s string) []string {
	var lines []string
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return lines
}

// checkUTF8 reports the line of the first byte that is not UTF-8, as Python's
// default (UTF-8) text decoding would fail there.
func checkUTF8(display string, data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Error{File: display, Line: line, Msg: fmt.Sprintf("byte 0x%02x at offset %d is not UTF-8 (save the file as UTF-8)", data[i], i)}
		}
		if data[i] == '\n' || (data[i] == '\r' && (i+1 >= len(data) || data[i+1] != '\n')) {
			line++
		}
		i += size
	}
	return nil
}

// parseINI parses data as configparser's _read does.
func parseINI(display string, data []byte) (*iniFile, error) {
	if err := checkUTF8(display, data); err != nil {
		return nil, err
	}
	f := &iniFile{display: display, defaults: newSection(defaultSection, 0), byName: map[string]*iniSection{}}
	type pending struct{ parts []string }
	values := map[*iniOption]*pending{}
	var (
		cur         *iniSection
		curOpt      *iniOption // configparser's optname: the option continuation lines extend
		indentLevel int
		firstErr    error // configparser's ParsingError: collected, raised at the end
	)
	for i, line := range splitLines(string(data)) {
		lineno := i + 1
		stripped := pyStrip(line)
		isComment := strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";")
		if isComment || stripped == "" {
			// An empty line inside a value is part of it; a comment line is not.
			if !isComment && cur != nil && curOpt != nil {
				values[curOpt].parts = append(values[curOpt].parts, "")
			}
			continue
		}
		indent := strings.IndexFunc(line, func(r rune) bool { return !pyIsSpace(r) })
		// indent counts characters, not bytes, as Python does.
		indent = utf8.RuneCountInString(line[:indent])
		if cur != nil && curOpt != nil && indent > indentLevel {
			values[curOpt].parts = append(values[curOpt].parts, stripped)
			continue
		}
		indentLevel = indent
		if name, ok := sectionHeader(stripped); ok {
			curOpt = nil
			if name == defaultSection {
				cur = f.defaults
				if cur.line == 0 {
					cur.line = lineno
				}
				continue
			}
			if prev, dup := f.byName[name]; dup {
				return nil, &Error{File: display, Line: lineno, Section: name,
					Msg: fmt.Sprintf("section appears twice (first at line %d); merge the two or rename one", prev.line)}
			}
			cur = newSection(name, lineno)
			f.sections = append(f.sections, cur)
			f.byName[name] = cur
			continue
		}
		if cur == nil {
			return nil, &Error{File: display, Line: lineno,
				Msg: fmt.Sprintf("%q comes before any [section] header; start the file with a header such as [app:main]", stripped)}
		}
		pos := strings.IndexAny(stripped, "=:")
		if pos < 0 {
			if firstErr == nil {
				firstErr = &Error{File: display, Line: lineno, Section: cur.name,
					Msg: fmt.Sprintf("%q is neither a section header nor an option; write name = value (indent it to continue the previous value)", stripped)}
			}
			continue
		}
		name := pyRStrip(stripped[:pos])
		if name == "" {
			if firstErr == nil {
				firstErr = &Error{File: display, Line: lineno, Section: cur.name,
					Msg: fmt.Sprintf("%q has no option name before %q", stripped, stripped[pos:pos+1])}
			}
			// configparser goes on with an empty name; nothing can follow it.
			curOpt = nil
			continue
		}
		if prev, dup := cur.byName[name]; dup {
			return nil, &Error{File: display, Line: lineno, Section: cur.name, Option: name,
				Msg: fmt.Sprintf("option appears twice in this section (first at line %d); keep one", prev.line)}
		}
		opt := &iniOption{name: name, line: lineno}
		values[opt] = &pending{parts: []string{pyStrip(stripped[pos+1:])}}
		cur.opts = append(cur.opts, opt)
		cur.byName[name] = opt
		curOpt = opt
	}
	for opt, p := range values {
		opt.value = pyRStrip(strings.Join(p.parts, "\n"))
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return f, nil
}

// sectionHeader matches configparser's SECTCRE, `\[(?P<header>.+)\]`, at the
// start of the stripped line: the header runs to the last ']' (greedy), may
// hold spaces and ']' and is not stripped; text after the last ']' is ignored.
func sectionHeader(s string) (string, bool) {
	if !strings.HasPrefix(s, "[") {
		return "", false
	}
	end := strings.LastIndexByte(s, ']')
	if end < 2 {
		return "", false
	}
	return s[1:end], true
}

// maxInterpolationDepth is configparser's MAX_INTERPOLATION_DEPTH.
const maxInterpolationDepth = 10

var interpKey = regexp.MustCompile(`^%\(([^)]+)\)s`)

// interpolationError is a BasicInterpolation failure; the caller locates it.
type interpolationError struct{ msg string }

func (e *interpolationError) Error() string { return e.msg }

// interpolate expands %(name)s and %% in value as BasicInterpolation does,
// looking names up in vars (the section's options over the defaults).
func interpolate(value string, vars func(string) (string, bool)) (string, error) {
	var b strings.Builder
	if err := interpolateSome(&b, value, vars, 1); err != nil {
		return "", err
	}
	return b.String(), nil
}

func interpolateSome(b *strings.Builder, rest string, vars func(string) (string, bool), depth int) error {
	if depth > maxInterpolationDepth {
		return &interpolationError{fmt.Sprintf("interpolation nests deeper than %d levels (a %%(name)s loop?)", maxInterpolationDepth)}
	}
	for rest != "" {
		p := strings.IndexByte(rest, '%')
		if p < 0 {
			b.WriteString(rest)
			return nil
		}
		b.WriteString(rest[:p])
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
		case strings.HasPrefix(rest, "%("):
			m := interpKey.FindStringSubmatch(rest)
			if m == nil {
				return &interpolationError{fmt.Sprintf("bad interpolation %q: write %%(name)s, or %%%% for a literal %%", rest)}
			}
			name := m[1]
			rest = rest[len(m[0]):]
			v, ok := vars(name)
			if !ok {
				return &interpolationError{fmt.Sprintf("%%(%s)s names no option of this section or [DEFAULT] (define %s, or write %%%% for a literal %%)", name, name)}
			}
			if strings.Contains(v, "%") {
				if err := interpolateSome(b, v, vars, depth+1); err != nil {
					return err
				}
			} else {
				b.WriteString(v)
			}
		default:
			return &interpolationError{fmt.Sprintf("'%%' must be followed by '%%' or '(' (found %q); write %%%% for a literal %%", rest)}
		}
	}
	return nil
}
