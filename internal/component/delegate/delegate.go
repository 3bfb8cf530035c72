// Package delegate is the `egg:wsgate#delegate` composite: an application
// (a Django view) answers with a header naming another application of the
// site, and Go hands that application the same request, with the
// SCRIPT_NAME, PATH_INFO and REMOTE_USER the first one chose. Django checks
// the login; Mercurial, Trac, git or a proxied service serves, and no
// Python worker of Django's is held while it does.
//
// It is a composite, not a filter, because the applications it hands
// requests to are named in its options and loaded with the site, as
// PasteDeploy gives only composites a loader.
//
// Security:
//   - Only the applications listed in `targets` can be named; any other
//     name is a 500 and an error in the log (the app's bug, or an attack
//     through it), never a guess.
//   - The X-Wsgate-* headers are the application's word to Go: they are
//     removed from every response and never reach the client.
//   - REMOTE_USER for the target comes from the application's
//     X-Wsgate-Remote-User (or stays what an auth filter set), never from
//     the client; when the application names a user, the client's
//     Authorization header is removed: the credentials were for it.
package delegate

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
)

// The response headers an application delegates with.
const (
	DefaultHeader    = "X-Wsgate-Delegate"
	headerRemoteUser = "X-Wsgate-Remote-User"
	headerScriptName = "X-Wsgate-Script-Name"
	headerPathInfo   = "X-Wsgate-Path-Info"
)

func init() {
	component.Register(component.Spec{
		Name:    "delegate",
		Role:    component.Composite,
		Sees:    component.SeesResponseHead,
		Summary: "Lets an application hand its request to another application of the site with a response header: Django checks the login, Go serves Mercurial, Trac, git, files or an upstream.",
		Doc: "Every request goes to `app` first. When its response carries the `header` (`X-Wsgate-Delegate: NAME`), " +
			"that response is dropped (its worker is free at once) and the same request goes to NAME, one of the " +
			"sections listed in `targets`: a WSGI application (in its own pool), a `static` or `sendfile` tree, a " +
			"`proxy`, a `cgi` program. These headers of the response say how:\n\n" +
			"| response header | for the target |\n| --- | --- |\n" +
			"| `X-Wsgate-Delegate: NAME` | the target's section name (required) |\n" +
			"| `X-Wsgate-Remote-User: USER` | REMOTE_USER; without it, REMOTE_USER stays what an auth filter set (or none). The client's `Authorization` header is then removed |\n" +
			"| `X-Wsgate-Script-Name: /hg` | SCRIPT_NAME, percent-encoded; default: the delegate's own |\n" +
			"| `X-Wsgate-Path-Info: /demo` | PATH_INFO, percent-encoded; default: the request's |\n\n" +
			"None of them reaches the client, delegating or not. The application's other headers are dropped " +
			"with its body: the target answers.\n\n" +
			"**The request body.** The target gets the whole body. The application should not read it (a Django " +
			"view that only checks the login never does: it reads `request.POST` only for form posts); what it " +
			"did read (and a small body, up to 32 KiB, that the gateway sends with the request) is kept, up to " +
			"`replay_limit`, and given to the target before the rest, which streams from the client as it comes: " +
			"an `hg push` or `git push` of any size passes. An application that read more than `replay_limit` and " +
			"then delegates gets a 500 and a log line.\n\n" +
			"A name not in `targets`, or a malformed path, is a 500 with an error in the log naming the header.\n\n" +
			"```ini\n[composite:hg]\nuse = egg:wsgate#delegate\napp = django\ntargets = hgweb trac git\n```\n\n" +
			"In a Django view, `return wsgate.django.delegate(\"hgweb\", request, path_info)` sets them as " +
			"`call_wsgi_app(app, request, path_info)` would set the environ (docs/cookbook.md, docs/demo.md).",
		Options: []component.Option{
			{Name: "app", Type: "application", Required: true, Help: "The application that answers first and may delegate (Django)."},
			{Name: "targets", Type: "applications", Required: true, Help: "The sections (space-separated) a response may name; any other name is refused."},
			{Name: "header", Type: "string", Default: DefaultHeader, Help: "The response header naming the target."},
			{Name: "replay_limit", Type: "bytes", Default: "1m", Help: "How much of the request body the application may read and the target still get."},
		},
		Build: build,
	})
}

type delegate struct {
	app     http.Handler
	targets map[string]http.Handler
	header  string
	limit   int64
	log     *slog.Logger
}

func build(b *component.Builder) (component.Built, error) {
	d := &delegate{targets: map[string]http.Handler{}, log: slog.Default()}
	if b.Host != nil {
		d.log = b.Host.Logger()
	}
	appName, err := b.Required("app")
	if err != nil {
		return component.Built{}, err
	}
	names := b.List("targets")
	if len(names) == 0 {
		return component.Built{}, b.Errorf("", "option targets is required: the sections a response may hand the request to")
	}
	d.header = b.String("header", DefaultHeader)
	if !component.ValidHeaderName(d.header) {
		return component.Built{}, b.Errorf("header", "%q is not a header name (letters, digits and '-')", d.header)
	}
	if d.limit, err = b.Bytes("replay_limit", 1<<20); err != nil {
		return component.Built{}, err
	}
	if b.Host == nil {
		return component.Built{}, b.Errorf("", "delegate needs a site to load its applications from")
	}
	if d.app, err = b.Host.App(appName); err != nil {
		return component.Built{}, b.Errorf("app", "%v", err)
	}
	for _, n := range names {
		if n == appName {
			return component.Built{}, b.Errorf("targets", "%s is the app itself", n)
		}
		if _, dup := d.targets[n]; dup {
			continue
		}
		h, err := b.Host.App(n)
		if err != nil {
			return component.Built{}, b.Errorf("targets", "%v", err)
		}
		d.targets[n] = h
	}
	return component.Built{Handler: d}, nil
}

// order is what the application's response said.
type order struct {
	target, user, script, path  string
	hasUser, hasScript, hasPath bool
}

func (d *delegate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, facts := component.Attach(r)
	var body *replayBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &replayBody{rc: r.Body, limit: d.limit}
		r.Body = body
	}
	var o order
	ic := component.Intercept(w, func(status int, h http.Header) bool {
		o.target = strings.TrimSpace(h.Get(d.header))
		o.user, o.hasUser = first(h, headerRemoteUser)
		o.script, o.hasScript = first(h, headerScriptName)
		o.path, o.hasPath = first(h, headerPathInfo)
		for _, k := range []string{d.header, DefaultHeader, headerRemoteUser, headerScriptName, headerPathInfo} {
			h.Del(k)
		}
		return o.target != ""
	})
	d.app.ServeHTTP(ic, r)
	if !ic.Taken() {
		return
	}
	for k := range w.Header() {
		delete(w.Header(), k) // the app's answer is dropped: the target answers
	}
	target, ok := d.targets[o.target]
	if !ok {
		d.refuse(w, r, "names no application listed in targets", o.target)
		return
	}
	script, path, err := component.RequestPath(r)
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if o.hasScript {
		if script, err = component.PercentDecode(o.script); err != nil || (script != "" && (!strings.HasPrefix(script, "/") || strings.HasSuffix(script, "/"))) {
			d.refuse(w, r, headerScriptName+" is not empty or a percent-encoded /path without a trailing /", o.script)
			return
		}
	}
	if o.hasPath {
		if path, err = component.PercentDecode(o.path); err != nil || (path != "" && !strings.HasPrefix(path, "/")) {
			d.refuse(w, r, headerPathInfo+" is not empty or a percent-encoded /path", o.path)
			return
		}
	}
	if o.hasUser {
		if o.user == "" || strings.ContainsFunc(o.user, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			d.refuse(w, r, headerRemoteUser+" is empty or holds a control character", o.user)
			return
		}
		facts.RemoteUser = o.user
		r.Header.Del("Authorization")
	}
	facts.ScriptName, facts.PathInfo, facts.PathSet = script, path, true
	if body != nil {
		if body.over {
			d.refuse(w, r, fmt.Sprintf("the application read more of the request body than replay_limit (%d bytes)", d.limit), o.target)
			return
		}
		r.Body = body.replay()
	}
	target.ServeHTTP(w, r)
}

// first returns a header's value and whether the response had it.
func first(h http.Header, k string) (string, bool) {
	v, ok := h[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

func (d *delegate) refuse(w http.ResponseWriter, r *http.Request, why, value string) {
	d.log.Error("delegate: refused the application's delegation", "header", d.header, "value", value,
		"error", why, "method", r.Method, "uri", r.RequestURI)
	http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
}

// replayBody keeps what the first application reads of the request body,
// up to limit, so the target can have it all.
type replayBody struct {
	rc    io.ReadCloser
	kept  bytes.Buffer
	limit int64
	over  bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && !b.over {
		if int64(b.kept.Len()+n) > b.limit {
			b.over = true
			b.kept = bytes.Buffer{}
		} else {
			b.kept.Write(p[:n])
		}
	}
	return n, err
}

func (b *replayBody) Close() error { return b.rc.Close() }

// replay is the whole body again: what was read, then the rest.
func (b *replayBody) replay() io.ReadCloser {
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b.kept.Bytes()), b.rc), b.rc}
}
