package main

import (
	"fmt"
	"os"
)

// runTest is filled in by its own issue; until then it says so plainly.
func runTest(args []string) int {
	fmt.Fprintln(os.Stderr, "wsgate test: not built yet")
	return exitUsage
}
