// Package urlmap is the `urlmap` composite (`use = egg:wsgate#urlmap`, and
// `egg:Paste#urlmap` unchanged): it mounts applications, Go or Python,
// under URL path prefixes and optionally host names, and dispatches each
// request to the longest prefix that matches, moving that prefix from
// PATH_INFO to SCRIPT_NAME as Paste's urlmap does. The rules, read from
// paste/urlmap.py (Paste 3) and checked against it by
// test/e2e/urlmap_test.go:
//
//   - A key is a path expression: a path ("/blog"), optionally with
//     "domain HOST" and "port PORT" words ("domain example.com port 8080
//     /blog"); a URL "http://HOST/path" is read too, though an INI file
//     cannot hold one as a key (":" ends a key). Runs of "/" collapse to one
//     and trailing slashes are dropped: "/" and "" mount at the root.
//   - Mounts with a domain are tried first (by domain, longest path first),
//     then those without (longest path first). A domain matches the
//     request's host (Host header, lower-cased, without its port) or
//     host:port (the port defaulting to 80, or 443 for https).
//   - The request's PATH_INFO (percent-decoded, runs of "/" collapsed)
//     matches a prefix when it equals it or continues with "/" after it:
//     "/blog" matches /blog and /blog/x, not /blogs. SCRIPT_NAME gains the
//     prefix and PATH_INFO keeps the rest ("" for /blog itself: no
//     redirect).
//   - Nothing matched: `not_found_app` (the option, else the global_conf
//     value) answers, else a plain-text 404.
package urlmap

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "urlmap",
		Aliases: []string{"egg:Paste#urlmap"},
		Role:    component.Composite,
		Sees:    component.SeesRequest,
		Summary: "Mounts applications, Go or Python, under URL prefixes and host names, longest prefix first, as Paste's urlmap.",
		Doc: "Each option whose key is a path expression mounts the application its value names (a section of the file, " +
			"or a `config:`, `egg:` or `call:` URI):\n\n" +
			"```ini\n[composite:main]\nuse = egg:wsgate#urlmap\n/ = django\n/static = static\ndomain api.example.com / = api\n```\n\n" +
			"A key is a path (`/blog`), optionally with `domain HOST` and `port PORT` words (`domain example.com port 8080 /blog`); " +
			"runs of `/` collapse and trailing slashes are dropped, so `/` mounts at the root. Mounts with a domain are " +
			"tried first, then the others, longest path first. A request matches a prefix when its path equals it or " +
			"continues with `/`; the prefix moves from PATH_INFO to SCRIPT_NAME (a request for `/blog` reaches the blog " +
			"with PATH_INFO empty, without a redirect). Requests nothing matches get `not_found_app`, else a plain-text " +
			"404. The same Python application mounted under several prefixes is one worker pool.\n\n" +
			"A domain matches the request's host (the Host header, lower-cased, without its port) or host:port, the port " +
			"defaulting to 80 (443 for https). The path is matched percent-decoded, as Paste matches PATH_INFO, with " +
			"runs of `/` collapsed.\n\n" +
			"One difference from Paste: the 404 page is the same plain text for every client (Paste's HTML variant " +
			"lists the mounts in a comment).",
		Options: []component.Option{
			{Name: "PATH EXPRESSION", Type: "application", Help: "Mounts the application the value names at the prefix the key gives (`/blog`, `domain example.com /`, `domain example.com port 8080 /blog`)."},
			{Name: "not_found_app", Type: "application", Help: "Answers the requests no prefix matches (default: a plain-text 404). Write it in the section: Paste also reads it from [DEFAULT], which wsgate refuses with an error, as it cannot load it in advance."},
		},
		Build: build,
	})
}

// mount is one prefix of the map.
type mount struct {
	domain string // "" for any host; may carry ":port"
	prefix string // "" for the root; no trailing slash
	key    string // as written, for the route label
	app    http.Handler
}

// urlmap is the built composite.
type urlmap struct {
	mounts   []mount
	notFound http.Handler
}

var slashes = regexp.MustCompile(`//+`)

func build(b *component.Builder) (component.Built, error) {
	m := &urlmap{}
	for _, key := range b.Keys() {
		name, _ := b.Lookup(key)
		if key == "not_found_app" {
			continue
		}
		domain, prefix, err := parseKey(key)
		if err != nil {
			return component.Built{}, b.Errorf(key, "%v", err)
		}
		app, err := b.Host.App(name)
		if err != nil {
			return component.Built{}, err
		}
		mt := mount{domain: domain, prefix: prefix, key: key, app: app}
		replaced := false
		for i := range m.mounts {
			if m.mounts[i].domain == domain && m.mounts[i].prefix == prefix {
				m.mounts[i] = mt // as in Paste, a later key for the same mount wins
				replaced = true
			}
		}
		if !replaced {
			m.mounts = append(m.mounts, mt)
		}
	}
	if nf, ok := b.Lookup("not_found_app"); ok && nf != "" {
		app, err := b.Host.App(nf)
		if err != nil {
			return component.Built{}, err
		}
		m.notFound = app
	} else if nf, _ := b.Node.GlobalConf.Get("not_found_app"); strings.TrimSpace(nf) != "" {
		// Paste's urlmap_factory reads it from global_conf too; wsgate
		// loads a composite's applications in advance, from its section.
		return component.Built{}, b.Errorf("", "not_found_app = %s is set in [DEFAULT] (%s): write it in this section instead",
			strings.TrimSpace(nf), b.Node.GlobalConf.Origin("not_found_app"))
	}
	sort.SliceStable(m.mounts, func(i, j int) bool {
		a, c := m.mounts[i], m.mounts[j]
		if (a.domain == "") != (c.domain == "") {
			return a.domain != "" // mounts with a domain first
		}
		if a.domain != c.domain {
			return a.domain < c.domain
		}
		if len(a.prefix) != len(c.prefix) {
			return len(a.prefix) > len(c.prefix)
		}
		return a.prefix < c.prefix
	})
	return component.Built{Handler: m}, nil
}

// parseKey reads a path expression as Paste's parse_path_expression and
// URLMap.normalize_url do: the domain (with ":port") and the prefix.
func parseKey(key string) (domain, prefix string, err error) {
	words := strings.Fields(key)
	var port, path string
	for len(words) > 0 {
		w := words[0]
		words = words[1:]
		switch w {
		case "domain", "port":
			if len(words) == 0 {
				return "", "", fmt.Errorf("%q must be followed with a %s", w, map[string]string{"domain": "domain name", "port": "port number"}[w])
			}
			dst := &domain
			if w == "port" {
				dst = &port
			}
			if *dst != "" {
				return "", "", fmt.Errorf("%q given twice", w)
			}
			*dst = words[0]
			words = words[1:]
		default:
			if path != "" {
				return "", "", fmt.Errorf("more than one path given (have %q, got %q)", path, w)
			}
			path = w
		}
	}
	if port != "" && domain == "" {
		return "", "", fmt.Errorf("if you give a port, you must also give a domain")
	}
	url := path
	if domain != "" {
		url = "http://" + domain
		if port != "" {
			url += ":" + port
		}
		if path != "" {
			url += "/" + path
		}
	}
	domain = ""
	if rest, ok := cutScheme(url); ok {
		domain, url = rest, ""
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			domain, url = rest[:i], rest[i:]
		}
	} else if url != "" && !strings.HasPrefix(url, "/") {
		return "", "", fmt.Errorf("a mount must start with / or http:// (you gave %q)", key)
	}
	return domain, strings.TrimRight(slashes.ReplaceAllString(url, "/"), "/"), nil
}

func cutScheme(s string) (string, bool) {
	for _, p := range []string{"http://", "https://"} {
		if strings.HasPrefix(s, p) {
			return s[len(p):], true
		}
	}
	return "", false
}

func (m *urlmap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, f := component.Attach(r)
	scriptName, pathInfo, err := component.RequestPath(r)
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	host, port := requestHost(r, f)
	path := pathInfo
	if strings.Contains(path, "//") {
		path = slashes.ReplaceAllString(path, "/")
	}
	for i := range m.mounts {
		mt := &m.mounts[i]
		if mt.domain != "" && mt.domain != host && mt.domain != host+":"+port {
			continue
		}
		if path == mt.prefix || strings.HasPrefix(path, mt.prefix) && path[len(mt.prefix)] == '/' {
			f.ScriptName, f.PathInfo, f.PathSet = scriptName+mt.prefix, path[len(mt.prefix):], true
			f.Route = f.ScriptName
			if f.Route == "" {
				f.Route = "/"
			}
			mt.app.ServeHTTP(w, r)
			return
		}
	}
	if m.notFound != nil {
		m.notFound.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintf(w, "404 Not Found\r\nThe resource could not be found.\r\n%s\r\n\r\n", pathInfo)
}

// requestHost is the host and port a domain mount is matched against:
// HTTP_HOST, else SERVER_NAME, lower-cased and split at its first ":" as
// Paste does; the port defaults by scheme.
func requestHost(r *http.Request, f *component.Facts) (host, port string) {
	host = r.Host
	if f.ServerName != "" {
		host = f.ServerName
		if f.ServerPort != "" {
			host += ":" + f.ServerPort
		}
	}
	host = strings.ToLower(host)
	if h, p, ok := strings.Cut(host, ":"); ok {
		return h, p
	}
	scheme := f.Scheme
	if scheme == "" && r.TLS != nil {
		scheme = "https"
	}
	if scheme == "https" {
		return host, "443"
	}
	return host, "80"
}
