package replica

import (
	"strings"
	"testing"
	"time"
)

// TestBackoffSchedule pins the Follower's reconnection schedule (issue 13):
// 100 ms doubling to the 1 s cap, ±20 % jitter at its extremes, and back
// to 100 ms after a stream that made progress.
func TestBackoffSchedule(t *testing.T) {
	for _, c := range []struct {
		name string
		r    float64 // what Rand returns
		want []time.Duration
	}{
		{"no jitter", 0.5, []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}},
		{"least", 0, []time.Duration{80, 160, 320, 640, 800, 800}},
		{"most", 0.999999, []time.Duration{120, 240, 480, 960, 1200, 1200}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := newBackoff(MaxBackoff)
			if err != nil {
				t.Fatal(err)
			}
			b.Rand = func() float64 { return c.r }
			for round := range 2 {
				for i, want := range c.want {
					want *= time.Millisecond
					if got := b.Next(); got.Round(time.Millisecond) != want {
						t.Errorf("round %d, wait %d: %v, want %v", round, i, got, want)
					}
				}
				b.Reset()
			}
		})
	}
}

// TestBackoffBounds: the cap a caller gives is bounded, and gRPC's channel
// uses the same schedule.
func TestBackoffBounds(t *testing.T) {
	for _, c := range []struct {
		max  time.Duration
		want string
	}{
		{BaseBackoff, ""}, {time.Minute, ""},
		{-time.Second, "max backoff -1s: want 100ms to 1m0s"},
		{50 * time.Millisecond, "max backoff 50ms: want 100ms to 1m0s"},
		{time.Hour, "max backoff 1h0m0s: want 100ms to 1m0s"},
	} {
		_, err := newBackoff(c.max)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("newBackoff(%v): %v, want %q", c.max, err, c.want)
		}
	}
	p := ConnectParams()
	if p.Backoff.BaseDelay != BaseBackoff || p.Backoff.MaxDelay != MaxBackoff || p.Backoff.Jitter != BackoffJitter || p.MinConnectTimeout < 5*time.Second {
		t.Errorf("ConnectParams: %+v, want the Follower's schedule and a connect timeout of 5 s or more", p)
	}
}
