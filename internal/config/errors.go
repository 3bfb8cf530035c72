package config

import (
	"fmt"
	"strings"
)

// Error is a configuration mistake, located as precisely as the mistake
// allows. Error() renders it as one line:
//
//	path/file.ini:LINE [section] option: what is wrong (and what would be right)
//
// Parts that are unknown are left out: no line gives "file.ini [section]…",
// no section gives "file.ini:3: …", no option gives "file.ini:3 [app:main]: …".
type Error struct {
	File    string // the file as the user would name it (relative to the working directory when inside it)
	Line    int    // 1-based; 0 when the mistake has no line (a missing file, a missing section)
	Section string // the section name as written, without brackets
	Option  string // the option name as written
	Msg     string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Section != "" {
		fmt.Fprintf(&b, " [%s]", e.Section)
	}
	if e.Option != "" {
		b.WriteString(" " + e.Option)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// location is where something was written: the anchor of an Error.
type location struct {
	file    string // display path
	line    int
	section string
	option  string
}

func (l location) errorf(format string, args ...any) *Error {
	return &Error{File: l.file, Line: l.line, Section: l.section, Option: l.option, Msg: fmt.Sprintf(format, args...)}
}

// String renders the location as an origin: "file:LINE [section] option".
func (l location) String() string {
	e := Error{File: l.file, Line: l.line, Section: l.section, Option: l.option}
	s := e.Error()
	return s[:len(s)-2] // drop the ": " before the (empty) message
}
