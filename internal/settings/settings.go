// Package settings declares every option of `wsgate serve` once — its flag,
// its key in the [server:…] section (and the keys other servers' sections
// use for the same thing), its environment variable, type, default, help
// and documentation — and derives from that one table the command-line
// flags, the server-section reader, the defaults and the table of
// docs/serve.md (docs/architecture.md, "Settings").
//
// One precedence for every command (serve, check, manage, test): a flag,
// else the environment variable, else the server section, else the
// default.
package settings

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/server"
)

// Serve is what `wsgate serve` runs with.
type Serve struct {
	App               string
	Binds             []string
	Workers           int
	Threads           int
	Timeout           float64
	MaxRequests       int
	MaxRequestsJitter int
	Pipeline          int
	QueueSize         int
	GracefulTimeout   float64
	MaxHeaderBytes    int
	Python            string
	PythonPath        []string
	Chdir             string
	Sets              []string
	LogConfig         string
	LogLevel          string
	LogFormat         string
	ControlSocket     string
	MaxWorkerMemory   Size
	Preload           bool
	Lend              bool
	ReloadSuffixes    []string
	SchedBatch        bool
	Reload            bool
	Net               server.Config // TLS, HTTP versions, ACME, the user: internal/server's
}

// Setting is one option, declared once.
type Setting struct {
	Flag    string   // without the dashes
	Arg     string   // the argument's name in --help and the docs: N, S, PATH…
	Key     string   // in [server:…]; "" for command-line only options
	Aliases []string // the same setting's key in waitress, gunicorn or Paste sections
	Env     string   // environment variable between the flag and the file
	// Default is applied before the flag, the environment and the file
	// are read ("" leaves the zero value); DefaultDoc is what the docs say
	// when that is not a literal value.
	Default    string
	DefaultDoc string
	Min        float64 // numbers: the smallest value that means something
	Above      bool    // numbers: the value must be above Min
	Choices    []string
	// Numbered choices are also given by their index, as gunicorn writes
	// cert_reqs (ssl.CERT_NONE 0, CERT_OPTIONAL 1, CERT_REQUIRED 2).
	Numbered bool
	// Site settings decide how Python finds the application; internal/site
	// reads them, with the same precedence, for every command.
	Site    bool
	KeyNote string // after the key in the docs: "(space-separated)"
	Help    string // one line, for --help
	Doc     string // its cell in docs/serve.md (Markdown)
	field   func(*Serve) any
}

func (s Setting) list() bool { _, ok := s.field(new(Serve)).(*[]string); return ok }

// Set parses v, from the command line, the environment or the file, into
// o; the error does not say where v came from: the caller does.
func (s Setting) Set(o *Serve, v string) error {
	v = strings.TrimSpace(v)
	switch p := s.field(o).(type) {
	case *string:
		if i, err := strconv.Atoi(v); err == nil && s.Numbered && i >= 0 && i < len(s.Choices) {
			v = s.Choices[i]
		}
		if len(s.Choices) > 0 && !contains(s.Choices, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(s.Choices, ", "))
		}
		*p = v
	case *[]string:
		*p = append(*p, SplitList(v)...)
	case *bool:
		b, err := ParseBool(v)
		if err != nil {
			return err
		}
		*p = b
	case *Size:
		n, err := component.ParseBytes(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a size (bytes, or a number with k, m or g)", v)
		}
		*p = Size(n)
	case *int:
		i, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number ≥ %v", v, s.Min)
		}
		if float64(i) < s.Min {
			return fmt.Errorf("%v is not a whole number ≥ %v", i, s.Min)
		}
		*p = i
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f != f {
			return fmt.Errorf("%q is not a number of seconds", v)
		}
		switch {
		case s.Above && f <= s.Min:
			return fmt.Errorf("%v must be more than %v seconds (there is no \"no limit\" here: in-flight requests need a bound)", f, s.Min)
		case f < s.Min:
			return fmt.Errorf("%v is not a number of seconds ≥ %v", f, s.Min)
		}
		*p = f
	}
	return nil
}

// Size is a number of bytes, written as bytes or with a k, m or g suffix
// (powers of 1024).
type Size int64

// SplitList splits a list value: space-separated as wsgate and PasteDeploy
// write them, or comma-separated as gunicorn does.
func SplitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// ParseBool reads the spellings of true and false INI files use.
func ParseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "y", "t", "1":
		return true, nil
	case "false", "no", "off", "n", "f", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", v)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Defaults sets every default of the table that is a value (lists get
// theirs in Resolve, when nothing else gave one, since flags append).
func Defaults(o *Serve) {
	for _, s := range Table {
		if s.Default != "" && !s.list() {
			if err := s.Set(o, s.Default); err != nil {
				panic("settings: the default of --" + s.Flag + ": " + err.Error())
			}
		}
	}
}

// Flags registers every setting as a flag of fs, writing into o.
func Flags(fs *flag.FlagSet, o *Serve) {
	for _, s := range Table {
		help := s.Help
		if s.Arg != "" {
			help = strings.Replace(help, s.Arg, "`"+s.Arg+"`", 1)
		}
		fs.Var(value{s, o}, s.Flag, help)
		// --help shows the declared default, and none for zeros.
		def := s.Default
		if def == "false" || def == "0" {
			def = ""
		}
		fs.Lookup(s.Flag).DefValue = def
	}
}

// SiteFlags registers the Site settings and --set only: the flags of
// check, manage and test, which load a site but do not serve it.
func SiteFlags(fs *flag.FlagSet, o *Serve) {
	for _, s := range Table {
		if s.Site || s.Flag == "set" {
			fs.Var(value{s, o}, s.Flag, strings.Replace(s.Help, s.Arg, "`"+s.Arg+"`", 1))
		}
	}
}

type value struct {
	s Setting
	o *Serve
}

func (v value) String() string {
	if v.o == nil || v.s.field == nil {
		return ""
	}
	switch p := v.s.field(v.o).(type) {
	case *[]string:
		return strings.Join(*p, " ")
	case *string:
		return *p
	case *bool:
		return strconv.FormatBool(*p)
	default:
		return fmt.Sprint(reflectDeref(p))
	}
}

func reflectDeref(p any) any {
	switch p := p.(type) {
	case *int:
		return *p
	case *float64:
		return *p
	case *Size:
		return int64(*p)
	}
	return p
}

func (v value) Set(x string) error { return v.s.Set(v.o, x) }
func (v value) IsBoolFlag() bool {
	_, ok := v.s.field(new(Serve)).(*bool)
	return ok
}

// Lookup is the setting of a flag name, or nil.
func Lookup(flagName string) *Setting {
	for i := range Table {
		if Table[i].Flag == flagName {
			return &Table[i]
		}
	}
	return nil
}
