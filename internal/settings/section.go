package settings

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// Resolve fills o from the environment and the server section conf (nil
// when the file has none) for every setting not given on the command line
// (given holds the flags that were), then gives lists their defaults. Site
// settings are left to internal/site. It returns the section's keys that
// no setting reads (sorted), for the one notice line serve prints: a
// section written for waitress, gunicorn or Paste runs unchanged, and what
// does not map is said once, not refused.
func Resolve(o *Serve, conf *config.Conf, given map[string]bool) (unused []string, err error) {
	known := map[string]bool{"use": true}
	for _, s := range Table {
		known[s.Key] = true
		for _, a := range s.Aliases {
			known[a] = true
		}
		if s.Site || given[s.Flag] {
			continue
		}
		if s.Env != "" {
			if v := os.Getenv(s.Env); strings.TrimSpace(v) != "" {
				if err := s.Set(o, v); err != nil {
					return nil, fmt.Errorf("$%s: %w", s.Env, err)
				}
				continue
			}
		}
		if conf != nil && s.Key != "" {
			if err := fromSection(o, s, conf); err != nil {
				return nil, err
			}
		}
	}
	if !given["bind"] && conf != nil && len(o.Binds) == 0 {
		o.Binds = hostPort(conf)
	}
	for _, k := range []string{"host", "port", "unix_socket"} {
		known[k] = true
	}
	for _, s := range Table {
		if s.list() && s.Default != "" && len(*s.field(o).(*[]string)) == 0 {
			_ = s.Set(o, s.Default)
		}
	}
	if conf != nil {
		for _, k := range conf.Keys() {
			if !known[k] {
				unused = append(unused, k)
			}
		}
	}
	sort.Strings(unused)
	return unused, nil
}

// fromSection reads s from its key, else from the first alias present.
func fromSection(o *Serve, s Setting, conf *config.Conf) error {
	for _, key := range append([]string{s.Key}, s.Aliases...) {
		v, ok := conf.Get(key)
		if !ok {
			continue
		}
		if err := s.Set(o, v); err != nil {
			return fmt.Errorf("%s: %w", Where(conf, key), err)
		}
		return nil
	}
	return nil
}

// hostPort is the listener of a section that names it the way waitress and
// egg:Paste#http do: host and port (host defaults to 127.0.0.1, as
// wsgate's own default bind), or waitress's unix_socket.
func hostPort(conf *config.Conf) []string {
	var binds []string
	if port, ok := conf.Get("port"); ok {
		host, _ := conf.Get("host")
		host = strings.TrimSpace(host)
		if host == "" {
			host = "127.0.0.1"
		}
		binds = append(binds, net.JoinHostPort(strings.Trim(host, "[]"), strings.TrimSpace(port)))
	}
	if path, ok := conf.Get("unix_socket"); ok && strings.TrimSpace(path) != "" {
		binds = append(binds, "unix:"+strings.TrimSpace(path))
	}
	return binds
}

// Where names a key of the section as errors do: file:line [section] key.
func Where(conf *config.Conf, key string) string {
	if w := conf.Origin(key); w != "" {
		return w
	}
	return "[server] " + key
}

// Listeners are the binds as internal/server opens them: waitress's
// `*:PORT` (every interface) is Go's `:PORT`.
func (o *Serve) Listeners() []string {
	out := make([]string, len(o.Binds))
	for i, b := range o.Binds {
		if strings.HasPrefix(b, "*:") {
			b = b[1:]
		}
		out[i] = b
	}
	return out
}
