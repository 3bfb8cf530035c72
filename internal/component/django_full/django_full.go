// Package django_full is `egg:wsgate#django_full` (also
// `egg:django-pastedeploy-settings#full_django`): a Django application with
// its static and media files served by the Go master, where the loaded
// Django settings say they are.
//
//	[composite:main]
//	use = egg:wsgate#django_full
//	django = django
//
//	[app:django]
//	use = egg:wsgate#django
//	STATIC_ROOT = "%(here)s/var/static"
//	MEDIA_ROOT = "%(here)s/var/media"
//
// At load it asks the site's Python (`python -m wsgate.django.settings_report`,
// in the workers' working directory) for DEBUG, STATIC_URL, STATIC_ROOT,
// MEDIA_URL, MEDIA_ROOT and the static-file finders' directories, then
// routes: a path under STATIC_URL or MEDIA_URL is a file served by Go (see
// the static package for the safety rules); everything else goes to Django.
package django_full

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/static"
	"github.com/wsgate/wsgate/internal/config"
)

func init() {
	component.Register(component.Spec{
		Name:    "django_full",
		Aliases: []string{"egg:django-pastedeploy-settings#full_django"},
		Role:    component.Composite,
		Sees:    component.SeesRequest,
		Summary: "A Django application with its static and media files served by Go, where its settings say they are.",
		Doc:     doc,
		Options: options,
		Build:   build,
	})
}

var options = []component.Option{
	{Name: "django", Type: "application",
		Help: "The Django application (a section name or a `config:` URI), served by the Python workers. Required, " +
			"unless given as `django_app`."},
	{Name: "django_app", Type: "application",
		Help: "django-pastedeploy-settings' name for `django`: give one of the two."},
	{Name: "static", Type: "bool", Default: "true",
		Help: "Serve STATIC_URL from Go (from STATIC_ROOT, or from the finders' directories while DEBUG is on)."},
	{Name: "media", Type: "bool", Default: "true",
		Help: "Serve MEDIA_URL from MEDIA_ROOT from Go."},
	{Name: "static_cache_control", Type: "string",
		Help: "Cache-Control of the static files, e.g. `public, max-age=31536000, immutable` with hashed names " +
			"(ManifestStaticFilesStorage)."},
	{Name: "media_cache_control", Type: "string",
		Help: "Cache-Control of the media files."},
}

const doc = `What django-pastedeploy-settings' ` + "`full_django`" + ` did with Paste's static
parser, served by the Go master instead: a static or media file never waits for
a Python worker. The Django settings are read when the site is loaded: at start, and when
` + "`--reload`" + ` sees a configuration file change (not on SIGHUP, nor on a change of the
settings module alone, which restart the workers only).

| Django settings | STATIC_URL is served | a file that is not there |
|---|---|---|
| DEBUG on, ` + "`django.contrib.staticfiles`" + ` installed | from the finders' directories in their order (STATICFILES_DIRS, then each app's ` + "`static/`" + `), as ` + "`runserver`" + ` does | goes to Django (the native factory's StaticFilesHandler, other finders, ` + "`staticfiles_urlpatterns()`" + `) |
| otherwise, STATIC_ROOT set | from STATIC_ROOT (what ` + "`collectstatic`" + ` fills) | 404 |
| otherwise | by Django, like any other URL (a warning at load when DEBUG is off: nothing serves them) | Django's answer |

MEDIA_URL is served from MEDIA_ROOT whenever both are set (the uploads: Django
never serves them itself). A directory that does not exist yet (STATIC_ROOT before
collectstatic, MEDIA_ROOT before the first upload) is a warning at load and 404s
until it exists.

- STATIC_URL and MEDIA_URL are matched against the path below where django_full is
  mounted (a relative STATIC_URL such as ` + "`static/`" + ` is what Django prefixes with
  SCRIPT_NAME). A URL with a host (a CDN) is not served here. STATIC_URL or
  MEDIA_URL equal to ` + "`/`" + ` is refused: it would hide Django.
- Files are served by the static component's handler: safe paths, ETag/304,
  ranges, precompressed ` + "`.br`" + `/` + "`.gz`" + ` siblings of static files (not of
  media), no directory listings, sendfile.
- A STATICFILES_DIRS entry with a prefix, and finders other than Django's two, are
  not followed by Go: in DEBUG their files reach Django, which serves them.`

// serving is the "serving" object of wsgate.django.settings_report.
type serving struct {
	Debug        bool     `json:"debug"`
	Staticfiles  bool     `json:"staticfiles"`
	FinderDirs   []string `json:"finder_dirs"`
	OtherFinders []string `json:"other_finders"`
	StaticURL    string   `json:"static_url"`
	StaticRoot   string   `json:"static_root"`
	MediaURL     string   `json:"media_url"`
	MediaRoot    string   `json:"media_root"`
}

func build(b *component.Builder) (component.Built, error) {
	key, name, err := djangoOption(b)
	if err != nil {
		return component.Built{}, err
	}
	serveStatic, err := b.Bool("static", true)
	if err != nil {
		return component.Built{}, err
	}
	serveMedia, err := b.Bool("media", true)
	if err != nil {
		return component.Built{}, err
	}
	staticCC, mediaCC := b.String("static_cache_control", ""), b.String("media_cache_control", "")

	s, err := askDjango(b, key, name)
	if err != nil {
		return component.Built{}, err
	}
	django, err := b.Host.App(name)
	if err != nil {
		return component.Built{}, err
	}
	site := &site{django: django}
	log := b.Host.Logger()
	add := func(setting, rawURL string, chain []*static.Files) error {
		prefix, err := mountPrefix(rawURL)
		if err != nil {
			return b.Errorf(key, "%s %s", setting, err)
		}
		if prefix == "" {
			log.Info(fmt.Sprintf("%s: %s %q names another host: not served here", b.Section(), setting, rawURL))
			return nil
		}
		for _, f := range chain {
			if err := f.OpenOrWarn(b, key); err != nil {
				return err
			}
		}
		site.mounts = append(site.mounts, mount{prefix: prefix, chain: chain})
		dirs := make([]string, len(chain))
		for i, f := range chain {
			dirs[i] = f.Dir
		}
		log.Info("django_full serves files from Go", "section", b.Section(), "setting", setting, "url", prefix, "from", strings.Join(dirs, " "))
		return nil
	}
	if serveStatic {
		var chain []*static.Files
		switch {
		case s.Debug && s.Staticfiles:
			for _, d := range s.FinderDirs {
				chain = append(chain, &static.Files{Dir: d, CacheControl: staticCC, Precompressed: true})
			}
			for i, f := range chain {
				f.NotFound = toDjango(django)
				if i+1 < len(chain) {
					f.NotFound = chain[i+1]
				}
			}
		case s.StaticRoot != "":
			chain = []*static.Files{{Dir: s.StaticRoot, CacheControl: staticCC, Precompressed: true}}
		case !s.Debug:
			log.Warn(fmt.Sprintf("%s: STATIC_ROOT is not set and DEBUG is off: nothing serves STATIC_URL (%s); set STATIC_ROOT and run collectstatic", b.Section(), s.StaticURL))
		}
		if len(chain) > 0 {
			if err := add("STATIC_URL", s.StaticURL, chain); err != nil {
				return component.Built{}, err
			}
		}
	}
	if serveMedia && s.MediaRoot != "" && s.MediaURL != "" {
		if err := add("MEDIA_URL", s.MediaURL, []*static.Files{{Dir: s.MediaRoot, CacheControl: mediaCC}}); err != nil {
			return component.Built{}, err
		}
	}
	sort.Slice(site.mounts, func(i, j int) bool { return len(site.mounts[i].prefix) > len(site.mounts[j].prefix) })
	return component.Built{Handler: site, Close: site.Close}, nil
}

// djangoOption reads `django` or its django-pastedeploy-settings spelling.
func djangoOption(b *component.Builder) (key, name string, err error) {
	d, hasD := b.Lookup("django")
	a, hasA := b.Lookup("django_app")
	switch {
	case hasD && hasA:
		return "", "", b.Errorf("django_app", "give django or django_app, not both")
	case hasA:
		key, name = "django_app", a
	default:
		key, name = "django", d
	}
	if name == "" {
		return "", "", b.Errorf("", "option django is required (the Django application's section)")
	}
	return key, name, nil
}

// askDjango runs the settings report on the Django application's node, in
// the site's Python, and returns what it says about static and media files.
func askDjango(b *component.Builder, key, name string) (*serving, error) {
	node := b.Node.Loadable[name]
	if node == nil {
		return nil, b.Errorf(key, "%q names no application", name)
	}
	ph, ok := b.Host.(component.PythonHost)
	if !ok {
		return nil, b.Errorf("", "django_full must ask Python for the Django settings, and this server cannot run Python here")
	}
	tree, err := node.WorkerJSON()
	if err != nil {
		return nil, err
	}
	cmd, err := ph.PythonCommand("wsgate.django.settings_report")
	if err != nil {
		return nil, b.Errorf(key, "asking Python for the Django settings: %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(tree), &stdout, &stderr
	runErr := cmd.Run()
	var rep struct {
		Mode    string   `json:"mode"`
		Error   string   `json:"error"`
		Serving *serving `json:"serving"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		if runErr != nil {
			return nil, b.Errorf(key, "the Django settings report failed (%v): %s", runErr, lastLine(stderr.String()))
		}
		return nil, b.Errorf(key, "the Django settings report answered something unreadable: %v", err)
	}
	if rep.Error != "" {
		// Already located at the Django section's option.
		return nil, fmt.Errorf("%s", rep.Error)
	}
	if rep.Mode == "" || rep.Serving == nil {
		return nil, b.Errorf(key, "%q is not a Django application (egg:wsgate#django, egg:twod.wsgi or egg:django-pastedeploy-settings): %s", name, describe(node))
	}
	return rep.Serving, nil
}

func describe(n *config.Node) string {
	if n.Factory != "" {
		return fmt.Sprintf("%s is %s", n.Source, n.Factory)
	}
	return n.Source.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// mountPrefix is the path a STATIC_URL or MEDIA_URL value is served under,
// ending in "/"; "" for a URL of another host.
func mountPrefix(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Host != "" || u.Scheme != "" {
		return "", nil
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if p == "/" {
		return "", fmt.Errorf("is %q: serving it from Go would hide Django (set static = false or media = false)", raw)
	}
	return p, nil
}
