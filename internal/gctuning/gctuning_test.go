package gctuning

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "")
	// An empty GOGC is set, as far as the environment goes: the runtime
	// read it at start (as the default, 100) and Apply leaves it alone.
	debug.SetGCPercent(250)
	if p, env := Apply(); p != 250 || !env {
		t.Errorf("GOGC set: Apply() = %d, %t; want the current 250, true", p, env)
	}
	if got := debug.SetGCPercent(250); got != 250 {
		t.Errorf("GOGC set: percent changed to %d", got)
	}
}

func TestApplyDefault(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "x") // t.Setenv restores the original afterwards
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	debug.SetGCPercent(100)
	if p, env := Apply(); p != DefaultPercent || env {
		t.Errorf("GOGC unset: Apply() = %d, %t; want %d, false", p, env, DefaultPercent)
	}
	if got := debug.SetGCPercent(100); got != DefaultPercent {
		t.Errorf("GOGC unset: percent is %d, want %d", got, DefaultPercent)
	}
}
