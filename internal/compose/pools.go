package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/config"
)

// PoolSettings are the wsgate.* options of a pool's application
// (docs/serve.md, "Worker pools"): what the pool runs with instead of the
// server's settings. A zero field (nil pointer) means "the server's".
type PoolSettings struct {
	// Pool is wsgate.pool: the pool's name, chosen by the user.
	Pool        string
	Workers     int      // wsgate.workers, ≥ 1
	Threads     int      // wsgate.threads, ≥ 1
	Timeout     *float64 // wsgate.timeout, seconds; 0: no limit
	MaxRequests *int     // wsgate.max_requests; 0: never
	// Python is wsgate.python, an absolute path.
	Python string
	// Origins says where each option was written, by its name without
	// the prefix ("workers" → "site.ini:7 [app:main] wsgate.workers").
	Origins map[string]string
}

// String is the settings as check prints them: "workers=4 python=/x".
func (s PoolSettings) String() string {
	var parts []string
	if s.Workers > 0 {
		parts = append(parts, "workers="+strconv.Itoa(s.Workers))
	}
	if s.Threads > 0 {
		parts = append(parts, "threads="+strconv.Itoa(s.Threads))
	}
	if s.Timeout != nil {
		parts = append(parts, "timeout="+strconv.FormatFloat(*s.Timeout, 'g', -1, 64))
	}
	if s.MaxRequests != nil {
		parts = append(parts, "max_requests="+strconv.Itoa(*s.MaxRequests))
	}
	if s.Python != "" {
		parts = append(parts, "python="+s.Python)
	}
	return strings.Join(parts, " ")
}

// poolOptions are the wsgate.* options an application section may have.
var poolOptions = []string{"pool", "workers", "threads", "timeout", "max_requests", "python"}

var poolNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// PoolKey is what makes two Python segments one pool: the pool a
// `wsgate.pool = NAME` names, else the same application configured the
// same way (its worker form, sources included, and its pool settings).
func PoolKey(worker []byte, s PoolSettings) string {
	if s.Pool != "" {
		return "pool " + s.Pool
	}
	h := sha256.New()
	h.Write(worker)
	h.Write([]byte{0})
	h.Write([]byte(s.String()))
	return hex.EncodeToString(h.Sum(nil))
}

// spine is the chain of nodes of a segment that lead to its application:
// the segment itself, then through the pipelines (app), filter-apps and
// filter-withs (next), down to the application or composite. Only these
// may carry wsgate.* options: they are what the pool serves.
func spine(seg *config.Node) []*config.Node {
	var out []*config.Node
	for n := seg; n != nil; {
		out = append(out, n)
		switch n.ObjectType {
		case config.TypePipeline:
			n = n.App
		case config.TypeFilterApp, config.TypeFilteredWith:
			n = n.Next
		default:
			n = nil
		}
	}
	return out
}

// wsgateError is the located error of a wsgate.* option.
func wsgateError(n *config.Node, key, format string, args ...any) error {
	where := n.Wsgate.Origin(key)
	if where == "" {
		where = fmt.Sprintf("%s %s%s", n.Source, config.WsgatePrefix, key)
	}
	return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
}

// poolSettings reads the wsgate.* options of a segment's application;
// the outermost section that gives one wins (a section that uses another
// overrides it). Such an option anywhere else in the segment — on a
// filter, or on an application a Python composite loads into its own
// process — is refused: it could not change how that part is served.
func poolSettings(seg *config.Node) (PoolSettings, error) {
	s := PoolSettings{Origins: map[string]string{}}
	on := map[*config.Node]bool{}
	for _, n := range spine(seg) {
		on[n] = true
	}
	var err error
	seg.Walk(func(n *config.Node) {
		if err != nil || n.Wsgate.Len() == 0 || on[n] {
			return
		}
		k := n.Wsgate.Keys()[0]
		err = wsgateError(n, k, "wsgate.* options belong to the application wsgate serves from a pool; %s runs inside the pool of %s (a filter, or an application its Python composite loads into the same process): put the option on %s",
			n.Source.Section, seg.Source, seg.Source.Section)
	})
	if err != nil {
		return s, err
	}
	for _, n := range spine(seg) {
		for _, k := range n.Wsgate.Keys() {
			if _, done := s.Origins[k]; done {
				continue
			}
			v, _ := n.Wsgate.Get(k)
			if err := s.set(n, k, strings.TrimSpace(v)); err != nil {
				return s, err
			}
			s.Origins[k] = n.Wsgate.Origin(k)
		}
	}
	return s, nil
}

func (s *PoolSettings) set(n *config.Node, k, v string) error {
	whole := func(min int) (int, error) {
		i, err := strconv.Atoi(v)
		if err != nil || i < min {
			return 0, wsgateError(n, k, "%q is not a whole number ≥ %d", v, min)
		}
		return i, nil
	}
	var err error
	switch k {
	case "pool":
		if !poolNameRe.MatchString(v) {
			return wsgateError(n, k, "%q is not a pool name (letters, digits, '_', '.', '-', starting with a letter or digit)", v)
		}
		s.Pool = v
	case "workers":
		s.Workers, err = whole(1)
	case "threads":
		s.Threads, err = whole(1)
	case "max_requests":
		var i int
		if i, err = whole(0); err == nil {
			s.MaxRequests = &i
		}
	case "timeout":
		f, perr := strconv.ParseFloat(v, 64)
		if perr != nil || f < 0 {
			return wsgateError(n, k, "%q is not a number of seconds ≥ 0 (0: no limit)", v)
		}
		s.Timeout = &f
	case "python":
		path, lerr := exec.LookPath(v)
		if lerr == nil {
			path, lerr = filepath.Abs(path)
		}
		if v == "" || lerr != nil {
			return wsgateError(n, k, "cannot run the Python interpreter %q: %v", v, lerr)
		}
		s.Python = path
	default:
		return wsgateError(n, k, "wsgate has no application option wsgate.%s (its options: wsgate.%s; docs/serve.md, \"Worker pools\")",
			k, strings.Join(poolOptions, ", wsgate."))
	}
	return err
}

// djangoFactories are wsgate's Django application factories: one
// settings object per process, so two configurations need two pools.
var djangoFactories = map[string]bool{
	"wsgate.django.factory:make_wsgi_app": true,
	"wsgate.django.compat:make_twod_app":  true,
	"wsgate.django.compat:make_dpds_app":  true,
}

// IsDjango reports whether n is one of wsgate's Django applications.
func IsDjango(n *config.Node) bool { return djangoFactories[n.Factory] }

// HoldsDjango reports whether the tree below n holds a Django application.
func HoldsDjango(n *config.Node) bool {
	found := false
	n.Walk(func(x *config.Node) { found = found || IsDjango(x) })
	return found
}

// djangoConfig is what makes a Django application's settings: the same
// factory with the same global_conf and local_conf configures Django the
// same way (wsgate.django.factory keys its one configuration so).
func djangoConfig(n *config.Node) string {
	b, _ := json.Marshal([]any{n.Factory, n.GlobalConf.Map(), n.LocalConf.Map()})
	return string(b)
}

// oneDjango refuses a segment that would load two Django configurations
// into one process (a Python composite mounting two Django sites): the
// workers could not load it. A Go composite gives each its own pool.
func oneDjango(seg *config.Node) error {
	var first *config.Node
	var err error
	seg.Walk(func(n *config.Node) {
		if err != nil || !IsDjango(n) {
			return
		}
		if first == nil {
			first = n
			return
		}
		if djangoConfig(n) != djangoConfig(first) {
			err = fmt.Errorf("%s: %s loads two Django configurations into one process, %s and %s, and Django has one settings object per process: mount them with egg:wsgate#urlmap (or egg:Paste#urlmap, which wsgate serves in Go), which gives each its own worker pool",
				seg.Source, seg.Factory, first.Source, n.Source)
		}
	})
	return err
}

// why says why each pool is a pool of its own, for check.
func (c *composer) explainPools() {
	django := 0
	for _, p := range c.out.Pools {
		if HoldsDjango(p.Node) {
			django++
		}
	}
	for _, p := range c.out.Pools {
		s := p.Settings
		switch {
		case s.Pool != "":
			p.Why = "named by wsgate.pool (" + s.Origins["pool"] + ")"
		case s.Python != "":
			p.Why = "its own interpreter, wsgate.python (" + s.Origins["python"] + ")"
		case django > 1 && HoldsDjango(p.Node):
			p.Why = "a Django configuration of its own (Django has one settings object per process)"
		case len(c.out.Pools) == 1:
			p.Why = "the site's only Python application"
		default:
			p.Why = "a distinct Python application (one pool per application)"
		}
	}
}
