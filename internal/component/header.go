package component

// ValidHeaderName accepts letters, digits and "-": a header name with "_"
// is dropped by the gateway (it would pose as another in the environ) and
// mangled by some proxies, so refusing it at load beats a header that
// silently never arrives.
func ValidHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
