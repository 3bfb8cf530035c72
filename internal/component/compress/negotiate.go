package compress

import (
	"strconv"
	"strings"
)

// negotiate picks the coding to answer a request's Accept-Encoding with, from
// offered (in the server's order of preference), or nil for identity.
//
// The client's quality values rank the codings (RFC 9110 section 12.5.3):
// "*" stands for every coding the header does not name; q=0 refuses one.
// Among equal qualities the server's order decides. Identity wins only when
// the client rates it strictly higher than every coding it accepts
// ("gzip;q=0.5, identity"). An absent or empty header means identity: a
// client that says nothing may not decode anything.
func negotiate(header string, offered []*coding) *coding {
	if header == "" {
		return nil
	}
	var (
		best     *coding
		bestQ    = 0.0
		star     = -1.0 // q of "*", -1 when absent
		identity = -1.0
		// the codings the header names, the first eight of them (browsers
		// name four or five): no allocation per request
		named [8]struct {
			name string
			q    float64
		}
		n int
	)
	for rest := header; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		name, q, ok := parseCoding(part)
		if !ok {
			continue
		}
		switch name {
		case "*":
			star = q
		case "identity":
			identity = q
		default:
			if name == "x-gzip" { // RFC 9110: a recipient should treat it as gzip
				name = "gzip"
			}
			if n < len(named) {
				named[n].name, named[n].q = name, q
				n++
			}
		}
	}
	for _, c := range offered {
		q := star
		for _, e := range named[:n] {
			if e.name == c.name {
				q = e.q
				break
			}
		}
		if q > bestQ {
			best, bestQ = c, q
		}
	}
	if best == nil || identity > bestQ {
		return nil
	}
	return best
}

// parseCoding reads one "coding;q=0.8" element; ok is false for an empty or
// malformed one, which is ignored.
func parseCoding(s string) (name string, q float64, ok bool) {
	name, params, _ := strings.Cut(s, ";")
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return "", 0, false
	}
	q = 1
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return "", 0, false
		}
		q = f
	}
	return name, q, true
}
