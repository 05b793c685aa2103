package main

import (
	"log/slog"
	"strings"
	"testing"
)

// TestPprofListen: the profile listener is off unless SHOMEI_PPROF_LISTEN
// is set, and refuses an address that is not loopback (the CA does not
// start). shomei-bench's TestScaleShort takes profiles through it.
func TestPprofListen(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct{ value, want string }{
		{"", ""},
		{"0.0.0.0:6060", "loopback"},
		{"192.0.2.1:6060", "loopback"},
		{"127.0.0.1", "loopback"}, // no port
		{"127.0.0.1:0", ""},
	} {
		t.Setenv(pprofEnv, tc.value)
		err := servePprof(log)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s=%q: %v", pprofEnv, tc.value, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s=%q: %v, want an error saying %q", pprofEnv, tc.value, err, tc.want)
		}
	}
}
