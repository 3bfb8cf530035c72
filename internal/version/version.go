// Package version is the one version of a wsgate build. The binary and the
// Python runtime it embeds share it: `make build` and `make dist` write the
// same string (scripts/version.sh) into the link flag below and into
// python/wsgate/_version.py.
package version

import (
	"runtime/debug"
	"strings"
)

// stamped is set by the Makefile:
// -ldflags "-X github.com/wsgate/wsgate/internal/version.stamped=1.2.0".
var stamped string

// String is the version of this binary: the one the Makefile stamped, else
// the module version the go command recorded (`go install …@v1.2.0` gives
// 1.2.0), else "dev".
func String() string {
	if stamped != "" {
		return stamped
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return strings.TrimPrefix(info.Main.Version, "v")
	}
	return "dev"
}
