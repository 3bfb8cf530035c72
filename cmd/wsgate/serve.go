package main

import (
	"fmt"
	"os"
)

// runServe is filled in by its own issue; until then it says so plainly.
func runServe(args []string) int {
	fmt.Fprintln(os.Stderr, "wsgate serve: not built yet")
	return exitUsage
}
