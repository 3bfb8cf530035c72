package server

import (
	"testing"
)

func TestFramedConnScan(t *testing.T) {
	cases := []struct {
		name     string
		input    string
		conflict bool
	}{
		{"content-length only", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde", false},
		{"chunked only", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"both", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"both, other case, bare LF", "POST / HTTP/1.1\nTRANSFER-ENCODING: chunked\ncontent-LENGTH: 5\n\n", true},
		{"in two requests", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"content-transfer-encoding is another field", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Transfer-Encoding: x\r\n\r\n", false},
	}
	for _, tc := range cases {
		// Every split of the input into two reads gives the same verdict.
		for cut := 0; cut <= len(tc.input); cut++ {
			c := &framedConn{}
			c.scan([]byte(tc.input[:cut]))
			c.scan([]byte(tc.input[cut:]))
			if c.conflict.Load() != tc.conflict {
				t.Fatalf("%s, cut at %d (%q): conflict=%v", tc.name, cut, tc.input[:cut], !tc.conflict)
			}
		}
		// and byte by byte
		c := &framedConn{}
		for _, b := range []byte(tc.input) {
			c.scan([]byte{b})
		}
		if c.conflict.Load() != tc.conflict {
			t.Fatalf("%s byte by byte: conflict=%v", tc.name, !tc.conflict)
		}
	}
}
