package component

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
)

// Host is what a component may ask of the site it is built into;
// internal/compose implements it.
type Host interface {
	// App builds the application that a composite's option value names (a
	// section of the file, a `config:` URI…, as PasteDeploy's loader.get_app
	// would), Go or Python, mounted as the composite says.
	App(name string) (http.Handler, error)
	// Site gives live facts about the running site (pools, draining).
	Site() Site
	Logger() *slog.Logger
}

// PythonHost is a Host that can run the site's Python outside the workers:
// django_full asks it, at load, what the Django settings say
// (`python -m wsgate.django.settings_report`). internal/compose's host
// implements it; a component that needs it and gets a Host without it
// refuses to load with a clear message.
type PythonHost interface {
	Host
	// PythonCommand prepares `python -m module args…` as the site's workers
	// start: the site's interpreter, with wsgate's runtime and the site's
	// python path on sys.path, in the workers' working directory (so a
	// relative path in a setting means what it means in a worker).
	PythonCommand(module string, args ...string) (*exec.Cmd, error)
}

// Site is the running server as components that report on it see it
// (metrics, health).
type Site interface {
	// Pools returns the state of every Python worker pool now.
	Pools() []PoolStats
	// Draining reports whether the server is shutting down (readiness false).
	Draining() bool
}

// PoolStats is one worker pool's state at one moment.
type PoolStats struct {
	Name       string         // the pool's name (`wsgate.pool`, else the application's section)
	Workers    int            // configured workers
	Ready      int            // workers ready to serve
	States     map[string]int // workers by state name (starting, ready, busy, draining…)
	Busy       int            // requests being served
	Queued     int            // requests waiting for a worker
	Restarts   uint64         // workers replaced since start (deaths, timeouts, recycling)
	Generation int            // reload generation
}

// Builder hands one section's options to a component's Build function and
// locates its errors. Every option read is marked, so compose can refuse the
// ones no component reads.
type Builder struct {
	Node *config.Node
	Host Host
	read map[string]bool
}

// NewBuilder is called by internal/compose (and by tests) for one node.
func NewBuilder(n *config.Node, h Host) *Builder {
	return &Builder{Node: n, Host: h, read: map[string]bool{}}
}

// Section is the node's "file:line [section]" for messages.
func (b *Builder) Section() string { return b.Node.Source.String() }

// Errorf is a configuration error at option key of this section
// ("file:LINE [section] key: …"); key "" locates it at the section.
func (b *Builder) Errorf(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		if origin := b.Node.LocalConf.Origin(key); origin != "" {
			return fmt.Errorf("%s: %s", origin, msg)
		}
		return fmt.Errorf("%s %s: %s", b.Section(), key, msg)
	}
	return fmt.Errorf("%s: %s", b.Section(), msg)
}

// Lookup returns the raw value of key from local_conf, trimmed.
func (b *Builder) Lookup(key string) (string, bool) {
	b.read[key] = true
	v, ok := b.Node.LocalConf.Get(key)
	return strings.TrimSpace(v), ok
}

// Keys returns every local_conf key (for composites whose keys are data,
// such as urlmap's prefixes); each is marked read.
func (b *Builder) Keys() []string {
	keys := b.Node.LocalConf.Keys()
	for _, k := range keys {
		b.read[k] = true
	}
	return keys
}

// Unread returns the local_conf keys no getter has read.
func (b *Builder) Unread() []string {
	var out []string
	for _, k := range b.Node.LocalConf.Keys() {
		if !b.read[k] {
			out = append(out, k)
		}
	}
	return out
}

// String returns key's value, or def.
func (b *Builder) String(key, def string) string {
	if v, ok := b.Lookup(key); ok {
		return v
	}
	return def
}

// Required returns key's value, or an error saying it is missing.
func (b *Builder) Required(key string) (string, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		return "", b.Errorf("", "option %s is required", key)
	}
	return v, nil
}

// Bool reads true/false/yes/no/on/off/1/0 as PasteDeploy's asbool does.
func (b *Builder) Bool(key string, def bool) (bool, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "yes", "on", "y", "t", "1":
		return true, nil
	case "false", "no", "off", "n", "f", "0":
		return false, nil
	}
	return false, b.Errorf(key, "%q is not true or false", v)
}

// Int reads a whole number ≥ min.
func (b *Builder) Int(key string, def, min int) (int, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		return 0, b.Errorf(key, "%q is not a whole number ≥ %d", v, min)
	}
	return n, nil
}

// Bytes reads a size: a whole number of bytes with an optional k, m or g
// suffix (powers of 1024, any case, optional "b"/"ib").
func (b *Builder) Bytes(key string, def int64) (int64, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		return def, nil
	}
	n, err := ParseBytes(v)
	if err != nil {
		return 0, b.Errorf(key, "%q is not a size (bytes, or a number with k, m or g)", v)
	}
	return n, nil
}

// ParseBytes reads "1048576", "512k", "10M", "1GiB".
func ParseBytes(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), "i")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	return n * mult, nil
}

// Duration reads seconds ("30", "0.5") or a Go duration ("1m30s").
func (b *Builder) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, b.Errorf(key, "%q is not a duration (seconds, or e.g. 1m30s)", v)
	}
	return d, nil
}

// List reads a whitespace-separated list (newlines included).
func (b *Builder) List(key string) []string {
	v, _ := b.Lookup(key)
	return strings.Fields(v)
}

// Networks reads a whitespace-separated list of addresses and CIDR networks
// ("127.0.0.1 10.0.0.0/8 ::1"); a bare address is a /32 (or /128).
func (b *Builder) Networks(key string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, w := range b.List(key) {
		if !strings.Contains(w, "/") {
			ip := net.ParseIP(w)
			if ip == nil {
				return nil, b.Errorf(key, "%q is not an address or a network (a.b.c.d/n)", w)
			}
			bits := 128
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(w)
		if err != nil {
			return nil, b.Errorf(key, "%q is not an address or a network (a.b.c.d/n)", w)
		}
		out = append(out, n)
	}
	return out, nil
}

// Path reads a file system path without looking at it; a relative path is
// taken from the INI file's directory (`here`). "" when the option is absent
// and not required.
func (b *Builder) Path(key string, required bool) (string, error) {
	v, ok := b.Lookup(key)
	if !ok || v == "" {
		if required {
			return "", b.Errorf("", "option %s is required", key)
		}
		return "", nil
	}
	if !filepath.IsAbs(v) {
		here, _ := b.Node.GlobalConf.Get("here")
		v = filepath.Join(here, v)
	}
	return filepath.Clean(v), nil
}

// Dir reads the path of a directory that must exist (see Path).
func (b *Builder) Dir(key string, required bool) (string, error) {
	p, err := b.Path(key, required)
	if err != nil || p == "" {
		return p, err
	}
	v, _ := b.Lookup(key)
	fi, err := os.Stat(p)
	if err != nil {
		return "", b.Errorf(key, "%s: %v", v, err)
	}
	if !fi.IsDir() {
		return "", b.Errorf(key, "%s is not a directory", v)
	}
	return p, nil
}
