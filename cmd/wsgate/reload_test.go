package main

import "testing"

func TestReloadAsBool(t *testing.T) {
	for in, want := range map[string]bool{"true": true, " Yes ": true, "on": true, "1": true, "t": true,
		"false": false, "NO": false, "off": false, "0": false, "f": false} {
		got, err := asBool(in)
		if err != nil || got != want {
			t.Errorf("asBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "maybe", "2", "truth"} {
		if _, err := asBool(in); err == nil {
			t.Errorf("asBool(%q) accepted", in)
		}
	}
}
