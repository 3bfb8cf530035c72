package static

import (
	"strconv"
	"strings"
)

// acceptQ is the quality an Accept-Encoding header (RFC 9110 §12.5.3) gives
// coding: its own entry's q, else the "*" entry's, else 0. Codings are
// case-insensitive; "x-gzip" counts as gzip; a q that does not parse makes
// the entry 0.
func acceptQ(header, coding string) float64 {
	own, star := -1.0, -1.0
	for _, item := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(item, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "x-gzip" {
			name = "gzip"
		}
		if name != coding && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(p, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		if name == coding {
			own = max(own, q)
		} else {
			star = max(star, q)
		}
	}
	switch {
	case own >= 0:
		return own
	case star >= 0:
		return star
	}
	return 0
}
