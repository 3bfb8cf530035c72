package requestid

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/internal/component"
	"github.com/wsgate/wsgate/internal/component/componenttest"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// seen is what the application behind the filter saw.
type seen struct {
	header []string // the request's id header
	facts  string   // Facts.RequestID
}

// run sends one request with the incoming ids through requestid built with
// options (alternating keys and values).
func run(t *testing.T, options []string, incoming ...string) (seen, *http.Response) {
	t.Helper()
	var s seen
	h := componenttest.Build(t, &componenttest.Host{}, "requestid", options...).Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := "X-Request-Id"
			if len(options) > 0 && options[0] == "header" {
				name = "X-Correlation-Id"
			}
			s.header = r.Header.Values(name)
			if f := component.FactsOf(r); f != nil {
				s.facts = f.RequestID
			}
		}))
	r := httptest.NewRequest("GET", "/", nil)
	for _, v := range incoming {
		r.Header.Add("X-Request-ID", v)
		r.Header.Add("X-Correlation-ID", v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return s, w.Result()
}

func TestGeneratedWhenAbsent(t *testing.T) {
	ids := map[string]bool{}
	for i := 0; i < 100; i++ {
		s, res := run(t, nil)
		if !uuid4.MatchString(s.facts) {
			t.Fatalf("generated id %q is not a version 4 UUID", s.facts)
		}
		if len(s.header) != 1 || s.header[0] != s.facts || res.Header.Get("X-Request-ID") != s.facts {
			t.Fatalf("id %q: the application saw %q, the client got %q", s.facts, s.header, res.Header.Get("X-Request-ID"))
		}
		if ids[s.facts] {
			t.Fatalf("id %q generated twice", s.facts)
		}
		ids[s.facts] = true
	}
}

func TestIncomingKeptWhenTrustedAndWellFormed(t *testing.T) {
	for _, id := range []string{"abc", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Root=1-5759e988-bd862e3fe1be46a994272793", "a@b:c/d+e=f_g.h", strings.Repeat("x", 128)} {
		s, res := run(t, nil, id)
		if s.facts != id || len(s.header) != 1 || s.header[0] != id || res.Header.Get("X-Request-ID") != id {
			t.Errorf("%q: facts %q, app %q, response %q", id, s.facts, s.header, res.Header.Get("X-Request-ID"))
		}
	}
}

func TestIncomingReplaced(t *testing.T) {
	for name, incoming := range map[string][]string{
		"quote":      {`abc"def`},
		"space":      {"abc def"},
		"backslash":  {`abc\def`},
		"newline":    {"abc\ndef"},
		"too long":   {strings.Repeat("x", 129)},
		"empty":      {""},
		"non-ASCII":  {"idé"},
		"two values": {"one", "two"},
	} {
		s, res := run(t, nil, incoming...)
		if !uuid4.MatchString(s.facts) || len(s.header) != 1 || s.header[0] != s.facts || res.Header.Get("X-Request-ID") != s.facts {
			t.Errorf("%s %q: facts %q, app %q, response %q", name, incoming, s.facts, s.header, res.Header.Get("X-Request-ID"))
		}
	}
	s, _ := run(t, []string{"trust_incoming", "false"}, "well-formed")
	if !uuid4.MatchString(s.facts) || s.header[0] != s.facts {
		t.Errorf("trust_incoming off: facts %q, app %q", s.facts, s.header)
	}
}

func TestHeaderAndEchoOptions(t *testing.T) {
	s, res := run(t, []string{"header", "x-correlation-id", "echo", "no"}, "corr-1")
	if s.facts != "corr-1" || s.header[0] != "corr-1" {
		t.Errorf("custom header: facts %q, app %q", s.facts, s.header)
	}
	if got := res.Header.Get("X-Correlation-ID") + res.Header.Get("X-Request-ID"); got != "" {
		t.Errorf("echo off, yet the response carries %q", got)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"header", "X Request", `[filter:requestid] header: "X Request" is not a header name`},
		{"header", "X-Id:", `[filter:requestid] header: "X-Id:" is not a header name`},
		{"trust_incoming", "maybe", `[filter:requestid] trust_incoming: "maybe" is not true or false`},
		{"echo", "2", `[filter:requestid] echo: "2" is not true or false`},
	} {
		componenttest.RequireError(t, "requestid", tc.want, tc.key, tc.value)
	}
}
