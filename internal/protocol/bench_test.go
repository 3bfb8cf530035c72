package protocol

import "testing"

// BenchmarkParseStart is the master's decoding of a typical Django
// response's START (six headers).
func BenchmarkParseStart(b *testing.B) {
	payload := AppendStart(nil, "200 OK", [][2]string{
		{"Content-Type", "text/html; charset=utf-8"},
		{"X-Frame-Options", "DENY"},
		{"Content-Length", "2048"},
		{"Vary", "Cookie"},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "same-origin"},
	})
	var sp StartPayload
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseStart(payload, &sp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendLatin1 is the environ's commonest work: ASCII header
// values of a browser's request.
func BenchmarkAppendLatin1(b *testing.B) {
	values := []string{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "en-US,en;q=0.5", "gzip, deflate, br",
		"sessionid=0123456789abcdefghijklmnopqrstuv; csrftoken=0123456789abcdefghijklmnopqrstuv", "/hello", "GET"}
	buf := make([]byte, 0, 1024)
	for b.Loop() {
		buf = buf[:0]
		for _, v := range values {
			buf = AppendLatin1(buf, v)
		}
	}
}
