package main

import (
	"fmt"
	"os"
)

// runCheck is filled in by its own issue; until then it says so plainly.
func runCheck(args []string) int {
	fmt.Fprintln(os.Stderr, "wsgate check: not built yet")
	return exitUsage
}
