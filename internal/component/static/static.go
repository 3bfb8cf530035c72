// Package static is `egg:wsgate#static` (also `egg:Paste#static`): the files
// below a directory, served by the Go master without a Python worker.
//
//	[app:static]
//	use = egg:wsgate#static
//	document_root = %(here)s/var/static
//	cache_control = public, max-age=3600
//
// Mounted by a urlmap (`/static = static`), it serves PATH_INFO below the
// mount; alone, the whole request path. See Files for what it refuses and
// why: no request path can name a file outside document_root.
package static

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "static",
		Aliases: []string{"egg:Paste#static"},
		Role:    component.App,
		Sees:    component.SeesRequest,
		Summary: "Serves the files below a directory from the Go master (ETag, 304, ranges, precompressed siblings, sendfile).",
		Doc:     doc,
		Options: Options,
		Build:   build,
	})
}

// Options are the static component's INI options (docs/components.md is
// rendered from them).
var Options = []component.Option{
	{Name: "document_root", Type: "path", Required: true,
		Help: "The directory served (Paste's name). A relative path is taken from the INI file's directory " +
			"(Paste took it from the working directory; `%(here)s/…` means the same to both). " +
			"A directory that does not exist yet is a warning at load and a 404 until it does."},
	{Name: "cache_control", Type: "string",
		Help: "The Cache-Control header sent with every file, e.g. `public, max-age=31536000, immutable`."},
	{Name: "cache_max_age", Type: "int",
		Help: "Paste's option: the same as `cache_control = max-age=N`. Give one or the other."},
	{Name: "index", Type: "list",
		Help: "File names tried, in order, for a URL naming a directory (e.g. `index.html`). Empty by default: " +
			"a directory is a 404, never a listing."},
	{Name: "dotfiles", Type: "bool", Default: "false",
		Help: "Serve names starting with a dot (.well-known). Off: a path with such a segment is a 404."},
	{Name: "precompressed", Type: "bool", Default: "true",
		Help: "Serve `NAME.br` or `NAME.gz` in place of NAME when the client accepts that encoding " +
			"(Accept-Encoding). Regenerate the siblings whenever NAME changes: their time is not checked."},
}

const doc = `Requests are answered by the Go master, so a static file never waits for a
Python worker. GET and HEAD only (405 otherwise).

- **Safe paths.** Files are opened through an ` + "`os.Root`" + ` on document_root: no name
  resolves outside it, neither by ` + "`..`" + ` nor by a symbolic link whose target is
  outside (links that stay inside are followed; ` + "`collectstatic --link`" + `, whose
  links point into the source tree, is not servable: copy instead). A path with a
  ` + "`..`" + ` or ` + "`.`" + ` segment, a backslash, a NUL byte or an encoded slash
  (` + "`%2F`" + `, ` + "`%5C`" + `) is a 400; a segment starting with a dot is a 404 unless
  ` + "`dotfiles = true`" + `. Only regular files are served.
- **Caching.** A strong ETag (modification time, size, encoding) and Last-Modified;
  If-None-Match and If-Modified-Since give 304; ` + "`cache_control`" + ` is sent as is.
- **Ranges.** A single range gives 206, several a multipart/byteranges 206, an
  unsatisfiable one 416; If-Range is honoured.
- **Precompressed siblings.** With ` + "`app.css.br`" + ` or ` + "`app.css.gz`" + ` beside
  ` + "`app.css`" + `, a client accepting br (preferred at equal quality) or gzip gets the
  sibling with Content-Encoding and the original's Content-Type. As with nginx's
  gzip_static, the sibling's time is not compared with the original's (copies such as
  collectstatic's write them in any order): regenerate siblings with their file. ` + "`Vary: Accept-Encoding`" + ` is sent with every file while
  ` + "`precompressed`" + ` is on (as nginx's gzip_static with gzip_vary), whether or not a
  sibling exists; the siblings are looked for only when the client accepts br or gzip.
- **Directories.** A URL naming a directory is a 404 unless ` + "`index`" + ` names the
  files to try; then a URL without its trailing slash is redirected (301) to it.
- **sendfile.** File bodies go from the page cache to the socket with sendfile(2), the
  header corked with them (TCP_CORK, as nginx's tcp_nopush) so both leave as one segment.
- The root directory is opened once; if it is replaced (not its content: the
  directory itself, e.g. a symlink switched to a new release), reload the server.`

func build(b *component.Builder) (component.Built, error) {
	h, err := FromOptions(b, "")
	if err != nil {
		return component.Built{}, err
	}
	if err := h.OpenOrWarn(b, "document_root"); err != nil {
		return component.Built{}, err
	}
	return component.Built{Handler: h, Close: h.Close}, nil
}

// FromOptions builds Files from the section's options. dir, when not "",
// is the document root already decided by the caller (django_full) and
// document_root is not read.
func FromOptions(b *component.Builder, dir string) (*Files, error) {
	var err error
	if dir == "" {
		if dir, err = b.Path("document_root", true); err != nil {
			return nil, err
		}
	}
	h := &Files{Dir: dir, Index: b.List("index")}
	if h.Dotfiles, err = b.Bool("dotfiles", false); err != nil {
		return nil, err
	}
	if h.Precompressed, err = b.Bool("precompressed", true); err != nil {
		return nil, err
	}
	h.CacheControl = b.String("cache_control", "")
	age, err := b.Int("cache_max_age", -1, 0)
	if err != nil {
		return nil, err
	}
	if age >= 0 {
		if h.CacheControl != "" {
			return nil, b.Errorf("cache_max_age", "give cache_control or cache_max_age, not both")
		}
		h.CacheControl = fmt.Sprintf("max-age=%d", age)
	}
	for _, idx := range h.Index {
		if idx == "." || idx == ".." || strings.ContainsAny(idx, "/\\\x00") {
			return nil, b.Errorf("index", "%q is not a file name", idx)
		}
	}
	return h, nil
}

// OpenOrWarn opens the document root, or warns (located at option key) that it is
// not there yet; anything else wrong with it is an error.
func (h *Files) OpenOrWarn(b *component.Builder, key string) error {
	fi, err := os.Stat(h.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		logger(b).Warn(b.Errorf(key, "%s does not exist (yet): its URLs are 404 until it does", h.Dir).Error())
		return nil
	case err != nil:
		return b.Errorf(key, "%v", err)
	case !fi.IsDir():
		return b.Errorf(key, "%s is not a directory", h.Dir)
	}
	if err := h.Open(); err != nil {
		return b.Errorf(key, "%v", err)
	}
	return nil
}

func logger(b *component.Builder) *slog.Logger {
	if b.Host != nil {
		if l := b.Host.Logger(); l != nil {
			return l
		}
	}
	return slog.Default()
}
