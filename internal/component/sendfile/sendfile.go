// Package sendfile is the `egg:wsgate#sendfile` filter: an application
// answers with an X-Sendfile or X-Accel-Redirect header instead of a body,
// and Go serves the file, so a download costs the application one short
// answer and the worker is free at once.
//
// Security: only files below the configured directories are served. The
// name an application gives is checked segment by segment
// (component.RootRelative: no "." or "..", no backslash, no NUL) and opened
// through an os.Root on its directory, so no symbolic link leads out either.
// A name outside the directories is the application's bug or an attack
// through it: the client gets a bare 500, never the file, and the log names
// the header and its value.
package sendfile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "sendfile",
		Role:    component.Filter,
		Sees:    component.SeesResponseHead,
		Summary: "Serves the file an application names in an X-Sendfile or X-Accel-Redirect response header, from configured directories only.",
		Doc: `The application (a Django view that checked a permission) answers with a header instead of the file;
Go opens the file and sends it with Range, ETag/Last-Modified (304) and HEAD, through the kernel's sendfile.
The worker is free as soon as the application has answered: anything it writes after such a header is
discarded and its iteration stopped.

* ` + "`X-Sendfile: /abs/path`" + ` (Apache's mod_xsendfile, lighttpd) names a file by its absolute path, which must
  lie below one of ` + "`roots`" + `.
* ` + "`X-Accel-Redirect: /uri`" + ` (nginx) names a URI (percent-decoded, any query dropped); the longest prefix of
  ` + "`accel_map`" + ` that it starts with gives the directory, and the rest of the URI the file in it, as an
  nginx ` + "`internal`" + ` location with an ` + "`alias`" + ` would.

Only a 200 answer is taken over; the header is removed from any other. The application's own headers stay
(Content-Type, Content-Disposition, Cache-Control, Set-Cookie…), except its Content-Length, Content-Encoding
and any other ` + "`X-Accel-*`" + `; when it sent no Content-Type, the file's extension gives one, and when it sent no
ETag, one is made from the file's size and modification time.

A name with a ` + "`.`" + ` or ` + "`..`" + ` segment, a backslash or a NUL byte, a name outside the directories or a
symbolic link leading out of one, and anything but a regular file, is a 500 for the client and an error
in the log naming the header and its value; a file that is not there is a 404.

    [filter:downloads]
    use = egg:wsgate#sendfile
    roots = /srv/private
    accel_map =
        /protected/ = /srv/private
        /reports/ = %(here)s/var/reports

In Django: ` + "`response = HttpResponse(content_type=\"application/pdf\")`" + `, then
` + "`response[\"X-Accel-Redirect\"] = \"/protected/\" + quote(name)`" + ` (or ` + "`response[\"X-Sendfile\"] = path`" + `).`,
		Options: []component.Option{
			{Name: "roots", Type: "list", Help: "Directories (space-separated; relative to the INI file's directory) whose files X-Sendfile may name by absolute path. Without it, X-Sendfile is refused."},
			{Name: "accel_map", Type: "lines", Help: "One `URI-PREFIX = DIRECTORY` per line: an X-Accel-Redirect URI starting with the prefix names the file at the rest of the URI in that directory. Without it, X-Accel-Redirect is refused."},
		},
		Build: build,
	})
}

// root is one directory files may be served from. A directory missing at
// load (var/downloads before the first run's setup) is opened when a
// request first finds it.
type root struct {
	dir string // absolute, clean
	mu  sync.Mutex
	fs  atomic.Pointer[os.Root]
}

func (r *root) open() (*os.Root, error) {
	if fsr := r.fs.Load(); fsr != nil {
		return fsr, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if fsr := r.fs.Load(); fsr != nil {
		return fsr, nil
	}
	fsr, err := os.OpenRoot(r.dir)
	if err != nil {
		return nil, err
	}
	r.fs.Store(fsr)
	return fsr, nil
}

func (r *root) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fsr := r.fs.Swap(nil); fsr != nil {
		return fsr.Close()
	}
	return nil
}

// accel maps an X-Accel-Redirect prefix to a root.
type accel struct {
	prefix string // starts and ends with "/"
	root   *root
}

type filter struct {
	roots  []*root // for X-Sendfile
	accels []accel // longest prefix first
	opened []*root // everything to close
	log    *slog.Logger
}

func build(b *component.Builder) (component.Built, error) {
	f := &filter{log: slog.Default()}
	if b.Host != nil {
		f.log = b.Host.Logger()
	}
	byDir := map[string]*root{}
	open := func(key, written string) (*root, error) {
		dir := written
		if !filepath.IsAbs(dir) {
			here, _ := b.Node.GlobalConf.Get("here")
			dir = filepath.Join(here, dir)
		}
		dir = filepath.Clean(dir)
		if r, ok := byDir[dir]; ok {
			return r, nil
		}
		r := &root{dir: dir}
		if _, err := r.open(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, b.Errorf(key, "%s: %v", written, err)
		} else if err != nil {
			f.log.Info("sendfile: directory missing; opened when it exists", "dir", dir, "section", b.Section())
		}
		byDir[dir] = r
		f.opened = append(f.opened, r)
		return r, nil
	}
	fail := func(err error) (component.Built, error) {
		f.close()
		return component.Built{}, err
	}
	for _, w := range b.List("roots") {
		r, err := open("roots", w)
		if err != nil {
			return fail(err)
		}
		f.roots = append(f.roots, r)
	}
	mapping, _ := b.Lookup("accel_map")
	for _, line := range strings.Split(mapping, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		prefix, dir, ok := strings.Cut(line, "=")
		prefix, dir = strings.TrimSpace(prefix), strings.TrimSpace(dir)
		if !ok || dir == "" || !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") {
			return fail(b.Errorf("accel_map", "%q is not `/uri-prefix/ = directory` (the prefix starts and ends with /)", line))
		}
		if _, err := component.RootRelative(prefix); err != nil {
			return fail(b.Errorf("accel_map", "prefix %q: %v", prefix, err))
		}
		for _, a := range f.accels {
			if a.prefix == prefix {
				return fail(b.Errorf("accel_map", "prefix %s is mapped twice", prefix))
			}
		}
		r, err := open("accel_map", dir)
		if err != nil {
			return fail(err)
		}
		f.accels = append(f.accels, accel{prefix: prefix, root: r})
	}
	sort.SliceStable(f.accels, func(i, j int) bool { return len(f.accels[i].prefix) > len(f.accels[j].prefix) })
	if len(f.roots) == 0 && len(f.accels) == 0 {
		return fail(b.Errorf("", "sendfile needs roots (for X-Sendfile) or accel_map (for X-Accel-Redirect)"))
	}
	return component.Built{Wrap: f.wrap, Close: f.close}, nil
}

func (f *filter) close() error {
	var first error
	for _, r := range f.opened {
		if err := r.close(); err != nil && first == nil {
			first = err
		}
	}
	f.opened = nil
	return first
}

const (
	headerSendfile = "X-Sendfile"
	headerAccel    = "X-Accel-Redirect"
)

func (f *filter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var header, value string
		ic := component.Intercept(w, func(status int, h http.Header) bool {
			for _, name := range []string{headerSendfile, headerAccel} {
				if v := h.Get(name); v != "" && header == "" {
					header, value = name, v
				}
			}
			h.Del(headerSendfile)
			h.Del(headerAccel)
			return header != "" && status == http.StatusOK
		})
		next.ServeHTTP(ic, r)
		if ic.Taken() {
			f.serve(w, r, header, value)
		}
	})
}

// errOutside is a name no configured directory holds.
var errOutside = errors.New("outside every configured directory")

// locate finds the root and the relative name an application's header
// value names.
func (f *filter) locate(header, value string) (*root, string, error) {
	if header == headerSendfile {
		if len(f.roots) == 0 {
			return nil, "", errors.New("X-Sendfile is not enabled (no roots)")
		}
		if !filepath.IsAbs(value) {
			return nil, "", errors.New("not an absolute path")
		}
		for _, rt := range f.roots {
			if rest, ok := strings.CutPrefix(value, rt.dir+"/"); ok {
				name, err := component.RootRelative(rest)
				return rt, name, err
			}
		}
		// Checked after the roots: "/srv/files/../../etc" starts with a
		// root but is refused for its "..", a name elsewhere for where it is.
		if _, err := component.RootRelative(value); err != nil {
			return nil, "", err
		}
		return nil, "", errOutside
	}
	if len(f.accels) == 0 {
		return nil, "", errors.New("X-Accel-Redirect is not enabled (no accel_map)")
	}
	uri, _, _ := strings.Cut(value, "?")
	uri, err := component.PercentDecode(uri)
	if err != nil {
		return nil, "", err
	}
	for _, a := range f.accels {
		if rest, ok := strings.CutPrefix(uri, a.prefix); ok {
			name, err := component.RootRelative(rest)
			return a.root, name, err
		}
	}
	return nil, "", errOutside
}

// serve answers with the file named by the application's header.
func (f *filter) serve(w http.ResponseWriter, r *http.Request, header, value string) {
	refuse := func(why error) {
		f.log.Error("sendfile: refused the application's file", "header", header, "value", value,
			"error", why.Error(), "method", r.Method, "uri", r.RequestURI)
		clearHead(w.Header())
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
	}
	rt, name, err := f.locate(header, value)
	if err != nil {
		refuse(err)
		return
	}
	fsr, err := rt.open()
	var file *os.File
	if err == nil {
		file, err = fsr.Open(name)
	}
	if errors.Is(err, fs.ErrNotExist) {
		f.log.Warn("sendfile: the application's file is not there", "header", header, "value", value, "uri", r.RequestURI)
		clearHead(w.Header())
		http.Error(w, "404 Not Found", http.StatusNotFound)
		return
	}
	if err != nil {
		refuse(err) // a link out of the root, a permission…
		return
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		refuse(err)
		return
	}
	if !fi.Mode().IsRegular() {
		refuse(fmt.Errorf("%s is not a regular file", fi.Mode().Type()))
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Del("Content-Range")
	h.Del("Accept-Ranges")
	for k := range h {
		if strings.HasPrefix(k, "X-Accel-") {
			delete(h, k)
		}
	}
	if h.Get("Etag") == "" {
		h.Set("Etag", `"`+strconv.FormatInt(fi.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(fi.Size(), 36)+`"`)
	}
	// ServeContent does Range, conditional requests, HEAD, and a
	// Content-Type from the name when the application set none (the
	// gateway's nil entry says "none, do not sniff": drop it here).
	if v, ok := h["Content-Type"]; ok && len(v) == 0 {
		delete(h, "Content-Type")
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), file)
}

// clearHead removes the application's headers before an error page: they
// described the file, not the error.
func clearHead(h http.Header) {
	for k := range h {
		delete(h, k)
	}
}
