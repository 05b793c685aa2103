package gctuning

import (
	"os"
	"runtime/debug"
)

// DefaultPercent is the GOGC of Shomei's servers when the environment does
// not set one.
const DefaultPercent = 400

// Apply sets the collector's target percentage to DefaultPercent unless the
// GOGC environment variable is set. It returns the percentage in effect (-1
// for off) and whether the environment chose it.
func Apply() (percent int, fromEnv bool) {
	if _, set := os.LookupEnv("GOGC"); set {
		current := debug.SetGCPercent(100)
		debug.SetGCPercent(current)
		return current, true
	}
	debug.SetGCPercent(DefaultPercent)
	return DefaultPercent, false
}
