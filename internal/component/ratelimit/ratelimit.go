// Package ratelimit is the `egg:wsgate#ratelimit` filter: a token bucket
// per client (address, or REMOTE_USER), answering 429 with Retry-After in Go,
// before the request can take a worker.
//
// Each client has a bucket of `burst` tokens refilled at `rate` tokens a
// second (golang.org/x/time/rate); a request takes one token or is refused.
// Memory is bounded: at most `max_clients` buckets are kept. When that many
// exist, the full ones are dropped first (a full bucket is the same as no
// bucket: that client is idle); if the table is still full, because that
// many clients are all active at once, a quarter of the table is dropped
// at random, which at worst hands those clients a fresh burst.
//
// Security properties, enforced here:
//   - The address is Facts.RemoteAddr, set only by proxyfix from trusted
//     proxies, else the connection's peer: a client cannot pick its key by
//     sending X-Forwarded-For.
//   - IPv6 clients are keyed by their /64 (ipv6_prefix) since one host
//     usually holds a whole /64 and could otherwise take a fresh bucket per
//     address.
//   - `key = user` counts per REMOTE_USER as an auth filter before this one
//     set it; anonymous requests are counted per address.
package ratelimit

import (
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wsgate/wsgate/internal/component"
)

func init() {
	component.Register(component.Spec{
		Name:    "ratelimit",
		Role:    component.Filter,
		Sees:    component.SeesRequest,
		Summary: "Limits each client (address or REMOTE_USER) to a rate of requests with a token bucket; 429 with Retry-After past it, before a worker is taken.",
		Doc: `Each client may send ` + "`burst`" + ` requests at once, then ` + "`rate`" + ` requests a second on average; past that it gets
` + "`429 Too Many Requests`" + ` with ` + "`Retry-After`" + ` (whole seconds until a request would be accepted), answered by Go
without taking a worker, while other clients go on being served.

The client is its address (` + "`key = addr`" + `): REMOTE_ADDR as proxyfix set it from a trusted proxy, else the
connection's peer; IPv6 addresses count per /64 (` + "`ipv6_prefix`" + `). With ` + "`key = user`" + `, it is REMOTE_USER as an
` + "`auth`" + ` filter placed before this one set it, and the address for anonymous requests. At most
` + "`max_clients`" + ` buckets are kept: idle clients are forgotten first. The buckets live in the master's
memory: a reload (SIGHUP) or a restart starts every client afresh.

Behind a reverse proxy (over TCP or a unix socket) every request comes from the proxy: put ` + "`proxyfix`" + `
first, or all clients share one bucket.

To slow password guessing, put a ` + "`key = addr`" + ` ratelimit before ` + "`auth`" + ` (auth refuses a wrong password
before any filter after it runs); a ` + "`key = user`" + ` one after ` + "`auth`" + ` shares a rate among each user's clients.

    [filter:throttle]
    use = egg:wsgate#ratelimit
    rate = 5
    burst = 20`,
		Options: []component.Option{
			{Name: "rate", Type: "number", Required: true, Help: "Requests per second each client may send on average (e.g. 10, or 0.5 for one every two seconds)."},
			{Name: "burst", Type: "int", Default: "rate, rounded up", Help: "Requests a client may send at once before the rate applies (the bucket's size)."},
			{Name: "key", Type: "addr or user", Default: "addr", Help: "Count per client address, or per REMOTE_USER (anonymous requests per address)."},
			{Name: "ipv6_prefix", Type: "int", Default: "64", Help: "IPv6 addresses are counted per network of this many bits."},
			{Name: "max_clients", Type: "int", Default: "100000", Help: "Most buckets kept in memory (about 200 bytes each)."},
		},
		Build: build,
	})
}

type limiter struct {
	perUser bool
	v6mask  net.IPMask
	table   *table
	log     *slog.Logger
}

func build(b *component.Builder) (component.Built, error) {
	raw, err := b.Required("rate")
	if err != nil {
		return component.Built{}, err
	}
	perSecond, err := strconv.ParseFloat(raw, 64)
	if err != nil || perSecond <= 0 || math.IsInf(perSecond, 0) || math.IsNaN(perSecond) {
		return component.Built{}, b.Errorf("rate", "%q is not a number of requests per second above 0", raw)
	}
	burst, err := b.Int("burst", int(math.Max(1, math.Ceil(perSecond))), 1)
	if err != nil {
		return component.Built{}, err
	}
	l := &limiter{log: slog.Default()}
	if b.Host != nil {
		l.log = b.Host.Logger()
	}
	switch key := b.String("key", "addr"); key {
	case "addr":
	case "user":
		l.perUser = true
	default:
		return component.Built{}, b.Errorf("key", "%q is neither addr nor user", key)
	}
	prefix, err := b.Int("ipv6_prefix", 64, 1)
	if err != nil {
		return component.Built{}, err
	}
	if prefix > 128 {
		return component.Built{}, b.Errorf("ipv6_prefix", "%d is more bits than an IPv6 address has (128)", prefix)
	}
	l.v6mask = net.CIDRMask(prefix, 128)
	maxClients, err := b.Int("max_clients", 100000, 1)
	if err != nil {
		return component.Built{}, err
	}
	l.table = newTable(rate.Limit(perSecond), burst, maxClients)
	return component.Built{Wrap: l.wrap}, nil
}

func (l *limiter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait, forced := l.table.take(l.key(r), time.Now())
		if forced {
			l.log.Warn("ratelimit: more active clients than max_clients; some were forgotten", "max_clients", l.table.max)
		}
		if !ok {
			secs := max(1, int64(math.Ceil(wait.Seconds()))) // a token taken by a concurrent request: 0 would invite a retry storm
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			http.Error(w, "429 Too Many Requests", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// key names the request's client: "u:" and REMOTE_USER, or "a:" and the
// address (an IPv6 address masked to its network).
func (l *limiter) key(r *http.Request) string {
	f := component.FactsOf(r)
	if l.perUser && f != nil && f.RemoteUser != "" {
		return "u:" + f.RemoteUser
	}
	addr := ""
	if f != nil {
		addr = f.RemoteAddr
	}
	if addr == "" {
		addr = r.RemoteAddr
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = host
		}
	}
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		addr = ip.Mask(l.v6mask).String()
	}
	return "a:" + addr
}

// table holds one bucket per client, at most max of them.
type table struct {
	every rate.Limit
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newTable(every rate.Limit, burst, max int) *table {
	return &table{every: every, burst: burst, max: max, buckets: map[string]*rate.Limiter{}}
}

// take spends one of key's tokens at now. When none is left it reports how
// long until one is; forced says clients still active had to be forgotten
// to make room.
func (t *table) take(key string, now time.Time) (ok bool, wait time.Duration, forced bool) {
	t.mu.Lock()
	b := t.buckets[key]
	if b == nil {
		if len(t.buckets) >= t.max {
			forced = t.makeRoom(now)
		}
		b = rate.NewLimiter(t.every, t.burst)
		t.buckets[key] = b
	}
	t.mu.Unlock()
	if b.AllowN(now, 1) {
		return true, 0, forced
	}
	missing := 1 - b.TokensAt(now)
	return false, time.Duration(missing / float64(t.every) * float64(time.Second)), forced
}

// makeRoom drops the full buckets (idle clients); if that frees nothing
// worth having, it drops a quarter of the table. Called with mu held.
func (t *table) makeRoom(now time.Time) (forced bool) {
	for k, b := range t.buckets {
		if b.TokensAt(now) >= float64(t.burst) {
			delete(t.buckets, k)
		}
	}
	target := t.max - t.max/4 - 1 // room for the bucket about to be added
	if len(t.buckets) <= target {
		return false
	}
	for k := range t.buckets { // Go's map order: an arbitrary quarter
		if len(t.buckets) <= target {
			break
		}
		delete(t.buckets, k)
	}
	return true
}
