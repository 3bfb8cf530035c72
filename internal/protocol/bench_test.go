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
