package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The master trusts no worker: a START whose status or headers could split
// the response, or whose name is not a token, is a protocol violation.
func TestParseStartRefusesUnsafeHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  string
		headers [][2]string
	}{
		{"name with a colon", "200 OK", [][2]string{{"X-A:", "1"}}},
		{"name with a space", "200 OK", [][2]string{{"X A", "1"}}},
		{"empty name", "200 OK", [][2]string{{"", "1"}}},
		{"name with a separator", "200 OK", [][2]string{{"X-(A)", "1"}}},
		{"name with a DEL", "200 OK", [][2]string{{"X-A\x7f", "1"}}},
		{"latin-1 name", "200 OK", [][2]string{{"X-Caf\xe9", "1"}}},
		{"value with CR", "200 OK", [][2]string{{"X-A", "1\rSet-Cookie: a=b"}}},
		{"value with LF", "200 OK", [][2]string{{"X-A", "1\nSet-Cookie: a=b"}}},
		{"status with LF", "200 OK\nX-A: 1", nil},
		{"status with CR", "200 O\rK", nil},
	} {
		var sp StartPayload
		err := ParseStart(AppendStart(nil, tc.status, tc.headers), &sp)
		if !errors.Is(err, ErrViolation) {
			t.Errorf("%s: got %v, want a protocol violation", tc.name, err)
		}
	}
}

func TestParseStartKeepsTokenNames(t *testing.T) {
	name := "!#$%&'*+-.^_`|~09azAZ"
	var sp StartPayload
	if err := ParseStart(AppendStart(nil, "201 Created", [][2]string{{name, "a; b=\"c\"\tdé"}}), &sp); err != nil {
		t.Fatal(err)
	}
	if sp.Code != 201 || len(sp.Headers) != 1 || sp.Headers[0] != [2]string{name, "a; b=\"c\"\tdé"} {
		t.Fatalf("got %+v", sp)
	}
}

// A byte from 0x80 up is a latin-1 code point wherever it stands: the
// ASCII test reads eight bytes at a time, so each position is tried.
func TestAppendLatin1HighByteAnywhere(t *testing.T) {
	for n := 1; n <= 20; n++ {
		for at := 0; at < n; at++ {
			s := []byte(strings.Repeat("a", n))
			s[at] = 0xe9
			var utf8 []byte
			for _, c := range s {
				utf8 = append(utf8, string(rune(c))...)
			}
			want := append([]byte{'u', byte(len(utf8)), 0, 0, 0}, utf8...)
			if got := AppendLatin1(nil, string(s)); !bytes.Equal(got, want) {
				t.Fatalf("%q: got % x, want % x", s, got, want)
			}
		}
		ascii := strings.Repeat("a", n)
		if got := AppendLatin1(nil, ascii); !bytes.Equal(got, append([]byte{'z', byte(n)}, ascii...)) {
			t.Fatalf("%q: got % x", ascii, got)
		}
	}
}
