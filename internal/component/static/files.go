package static

import (
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsgate/wsgate/internal/component"
)

// Files serves the regular files below one directory. It is the handler of
// `egg:wsgate#static` and of django_full's STATIC_URL and MEDIA_URL mounts.
//
// Security: every file is opened through an os.Root on Dir, so no name can
// resolve outside it, whether by "..", an absolute path or a symbolic link
// whose target lies outside (a link inside the root to a file inside it is
// followed). Before that, a path with a ".." or "." segment, a backslash, a
// NUL byte or an encoded slash (%2F, %5C) is refused with 400 (no file
// name can hold them; they are only ever attacks or broken clients), and a
// segment starting with "." (.git, .env, .htaccess) is a 404 unless
// Dotfiles is set. Directories are never listed.
type Files struct {
	// Dir is the absolute path of the document root.
	Dir string
	// CacheControl is sent with every file (and 304) when not empty.
	CacheControl string
	// Index names the files tried, in order, for a request naming a
	// directory; empty: a directory is a 404.
	Index []string
	// Dotfiles serves names starting with ".".
	Dotfiles bool
	// Precompressed serves NAME.br or NAME.gz instead of NAME when the
	// client accepts that encoding and the sibling is a regular file. Its
	// time is not compared with NAME's (copies such as collectstatic's
	// leave them in any order): whoever updates NAME updates its siblings.
	Precompressed bool
	// NotFound, when set, answers the requests for names that are not
	// there (django_full hands them to the next static directory, then to
	// Django); a refused path is still refused here.
	NotFound http.Handler

	mu   sync.Mutex
	root atomic.Pointer[os.Root]
}

// Open opens Dir now if it exists; a missing Dir is opened at the first
// request that finds it (a media directory made by the first upload, a
// static directory made by collectstatic after the server started).
func (h *Files) Open() error {
	_, err := h.openRoot()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (h *Files) openRoot() (*os.Root, error) {
	if r := h.root.Load(); r != nil {
		return r, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.root.Load(); r != nil {
		return r, nil
	}
	r, err := os.OpenRoot(h.Dir)
	if err != nil {
		return nil, err
	}
	h.root.Store(r)
	return r, nil
}

// Close releases the directory.
func (h *Files) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.root.Swap(nil); r != nil {
		return r.Close()
	}
	return nil
}

// fileName turns a request path into a name relative to the root, or an
// HTTP status refusing it. dir reports a trailing slash.
func (h *Files) fileName(r *http.Request) (name string, dir bool, status int) {
	if encodedSeparator(r.URL.EscapedPath()) {
		return "", false, http.StatusBadRequest
	}
	// PATH_INFO: below the mount when a urlmap (or django_full) set it,
	// else the whole request path.
	_, p, err := component.RequestPath(r)
	if err != nil {
		return "", false, http.StatusBadRequest
	}
	empty := false
	for rest := p; rest != ""; {
		var s string
		s, rest, _ = strings.Cut(rest, "/")
		switch {
		case s == "":
			empty = true
		case s == "." || s == ".." || strings.ContainsAny(s, "\\\x00"):
			return "", false, http.StatusBadRequest
		case s[0] == '.' && !h.Dotfiles:
			return "", false, http.StatusNotFound
		}
	}
	dir = strings.HasSuffix(p, "/")
	name = strings.Trim(p, "/")
	if empty && strings.Contains(name, "//") {
		name = path.Clean(name) // only collapses the empty segments: no dot segment is left
	}
	if name == "" {
		return ".", true, 0
	}
	return name, dir, 0
}

// encodedSeparator reports an escaped slash or backslash (%2F, %5C): no
// file name holds one, and decoded they would split or join segments
// behind the checks of the decoded path.
func encodedSeparator(raw string) bool {
	for i := strings.IndexByte(raw, '%'); i >= 0 && i+2 < len(raw); {
		if hi, lo := raw[i+1], raw[i+2]|0x20; (hi == '2' && lo == 'f') || (hi == '5' && lo == 'c') {
			return true
		}
		j := strings.IndexByte(raw[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func (h *Files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: static files answer GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	name, dir, status := h.fileName(r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	root, err := h.openRoot()
	if err != nil {
		h.notFound(w, r)
		return
	}
	f, fi, err := open(root, name) // follows links that stay inside the root
	if err != nil {
		h.refuse(w, r, err)
		return
	}
	if fi.IsDir() {
		f.Close()
		if len(h.Index) == 0 {
			h.notFound(w, r)
			return
		}
		if !dir {
			// As Paste and every web server: a directory's URL ends in "/",
			// so relative links in its index resolve below it.
			target := r.URL.EscapedPath() + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		f = nil
		for _, idx := range h.Index {
			if xf, xfi, err := open(root, path.Join(name, idx)); err == nil {
				if xfi.Mode().IsRegular() {
					name, f, fi = path.Join(name, idx), xf, xfi
					break
				}
				xf.Close()
			}
		}
		if f == nil {
			h.notFound(w, r)
			return
		}
	} else if dir || !fi.Mode().IsRegular() {
		// "file.css/" names nothing; devices, sockets and FIFOs are not
		// served.
		f.Close()
		h.notFound(w, r)
		return
	}
	h.serveFile(w, r, root, name, f, fi)
}

// open opens name below root and describes what it opened. O_NONBLOCK:
// opening a FIFO must not wait for a writer (it is then refused as not a
// regular file); it changes nothing for regular files.
func open(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// refuse answers a failed lookup: a name that does not exist is not found,
// an unreadable one a 403, one that escapes the root (a link out) a 404.
func (h *Files) refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.notFound(w, r)
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
	default:
		http.NotFound(w, r)
	}
}

func (h *Files) notFound(w http.ResponseWriter, r *http.Request) {
	if h.NotFound != nil {
		h.NotFound.ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

// encodings are the precompressed siblings looked for, preferred first
// when the client weighs them equally.
var encodings = []struct{ coding, suffix string }{{"br", ".br"}, {"gzip", ".gz"}}

// serveFile sends f (name, described by fi), or a precompressed sibling,
// and closes it.
func (h *Files) serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string, f *os.File, fi fs.FileInfo) {
	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	coding := ""
	if h.Precompressed {
		// Whether or not a sibling exists or is chosen, the answer depends
		// on Accept-Encoding (as nginx's gzip_static with gzip_vary).
		hdr.Add("Vary", "Accept-Encoding")
		if sf, sfi, c := h.pickEncoding(r, root, name); sf != nil {
			f.Close()
			f, fi, coding = sf, sfi, c
			if ctype == "" {
				ctype = "application/octet-stream" // never sniff compressed bytes
			}
		}
	}
	defer f.Close()
	if ctype != "" {
		hdr.Set("Content-Type", ctype)
	}
	if coding != "" {
		hdr.Set("Content-Encoding", coding)
	}
	hdr.Set("ETag", etag(fi, coding))
	if h.CacheControl != "" {
		hdr.Set("Cache-Control", h.CacheControl)
	}
	// ServeContent answers If-None-Match / If-Modified-Since with 304,
	// Range with 206 (multipart for several ranges), HEAD without a body,
	// and copies an *os.File with sendfile; corked, the header and the
	// file leave together.
	uncork := component.Cork(r)
	http.ServeContent(w, r, name, fi.ModTime(), f)
	uncork()
}

// etag is strong (Range and If-Range need that) and changes with the file's
// size, modification time and the encoding served.
func etag(fi fs.FileInfo, coding string) string {
	var b [64]byte
	t := append(b[:0], '"')
	t = strconv.AppendInt(t, fi.ModTime().UnixNano(), 16)
	t = append(t, '-')
	t = strconv.AppendInt(t, fi.Size(), 16)
	if coding != "" {
		t = append(append(t, '-'), coding...)
	}
	return string(append(t, '"'))
}

// pickEncoding opens the precompressed sibling of name that the request's
// Accept-Encoding prefers (br at equal quality), if one is there and no
// a regular file; nil when the file itself is best.
func (h *Files) pickEncoding(r *http.Request, root *os.Root, name string) (*os.File, fs.FileInfo, string) {
	accept := r.Header.Get("Accept-Encoding")
	if accept == "" {
		return nil, nil, ""
	}
	var best *os.File
	var bestFI fs.FileInfo
	bestQ, bestCoding := 0.0, ""
	for _, e := range encodings {
		q := acceptQ(accept, e.coding)
		if q <= bestQ {
			continue
		}
		sf, sfi, err := open(root, name+e.suffix)
		if err != nil {
			continue
		}
		if !sfi.Mode().IsRegular() {
			sf.Close()
			continue
		}
		if best != nil {
			best.Close()
		}
		best, bestFI, bestQ, bestCoding = sf, sfi, q, e.coding
	}
	return best, bestFI, bestCoding
}
