package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestStampedWins(t *testing.T) {
	defer func(old string) { stamped = old }(stamped)
	stamped = "1.2.0.post3+g1a2b3c4"
	if got := String(); got != "1.2.0.post3+g1a2b3c4" {
		t.Fatalf("String() = %q, want the stamped version", got)
	}
}

func TestUnstampedFallsBackToBuildInfo(t *testing.T) {
	defer func(old string) { stamped = old }(stamped)
	stamped = ""
	got := String()
	if got == "" || strings.HasPrefix(got, "v") {
		t.Fatalf("String() = %q: want a non-empty version without the Go tag's v", got)
	}
	info, ok := debug.ReadBuildInfo()
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" && got != strings.TrimPrefix(info.Main.Version, "v") {
		t.Fatalf("String() = %q, build info says %q", got, info.Main.Version)
	}
}
