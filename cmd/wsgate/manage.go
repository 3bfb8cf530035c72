package main

import (
	"fmt"
	"os"
)

// runManage is filled in by its own issue; until then it says so plainly.
func runManage(args []string) int {
	fmt.Fprintln(os.Stderr, "wsgate manage: not built yet")
	return exitUsage
}
