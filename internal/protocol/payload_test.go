package protocol

import (
	"errors"
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
