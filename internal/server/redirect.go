package server

import (
	"net"
	"net/http"
	"strconv"
)

// redirectHandler sends every request to the same URL over HTTPS, on the
// port of the first HTTPS listener (left out when it is 443). With ACME it
// first answers HTTP-01 challenges.
func redirectHandler(lns []Listener, t *TLS) http.Handler {
	port := ""
	for _, l := range lns {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			if a.Port != 443 {
				port = strconv.Itoa(a.Port)
			}
			break
		}
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _ := splitHost(r.Host)
		if host == "" {
			http.Error(w, "400 Bad Request: no Host to redirect to", http.StatusBadRequest)
			return
		}
		if port != "" {
			host = net.JoinHostPort(host, port)
		} else if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
		// 301 keeps GET and HEAD; 308 keeps any other method and its body.
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
	if t != nil && t.acme != nil {
		challenges := t.acme.HTTPHandler(h)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// autocert checks the Host against acme_domains with no port,
			// as the CA sends it on port 80; a listener on another port
			// (behind a port forward, or a test) gets the same answer.
			if host, port := splitHost(r.Host); port != "" {
				r = r.Clone(r.Context())
				r.Host = host
			}
			challenges.ServeHTTP(w, r)
		})
	}
	return h
}

// splitHost is the host of a Host header, with or without a port.
func splitHost(hostport string) (host, port string) {
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return hostport, ""
}
