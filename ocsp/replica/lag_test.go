package replica

import (
	"testing"
	"time"
)

// TestLag drives the lag through the stream's messages as Follow sees them
// and checks both values at a pinned time.
func TestLag(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	sent := start.Add(10 * time.Second)
	now := start.Add(time.Minute)
	type step func(*lag)
	msg := func(rev uint64, snap bool, applied uint64, at time.Time) step {
		return func(l *lag) { l.message(rev, snap, applied, at) }
	}
	disc := func(l *lag) { l.disconnected() }
	tests := []struct {
		name     string
		steps    []step
		wantRevs uint64
		wantSecs float64
	}{
		{"never connected, never synced: since start", nil, 0, 60},
		{"snapshot under way: behind by the head", []step{msg(500, true, 0, sent)}, 500, 60},
		{"snapshot complete: in sync", []step{msg(500, true, 0, sent), msg(500, false, 500, sent)}, 0, 0},
		{"caught up by a heartbeat", []step{msg(700, false, 700, sent)}, 0, 0},
		{"disconnected after sync: seconds since", []step{msg(700, false, 700, sent), disc}, 0, 50},
		{"a higher head announced, not yet applied", []step{msg(700, false, 700, sent), msg(900, true, 700, start.Add(20*time.Second))}, 200, 50},
		{"head lower than before is ignored", []step{msg(900, false, 900, sent), msg(800, false, 800, start.Add(30*time.Second))}, 100, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lag{since: start}
			for _, s := range tt.steps {
				s(l)
			}
			revs, secs := l.at(now)
			if revs != tt.wantRevs || secs != tt.wantSecs {
				t.Errorf("lag = %d revisions, %v s; want %d, %v", revs, secs, tt.wantRevs, tt.wantSecs)
			}
		})
	}
	t.Run("reset forgets the head", func(t *testing.T) {
		l := &lag{since: start}
		l.message(900, false, 900, sent)
		l.reset()
		l.message(50, true, 0, sent)
		if revs, _ := l.at(now); revs != 50 {
			t.Errorf("after reset: %d revisions behind, want 50", revs)
		}
	})
	t.Run("a stored sync time is the origin", func(t *testing.T) {
		l := &lag{since: start, syncedAt: start.Add(-time.Hour)}
		if _, secs := l.at(now); secs != 3660 {
			t.Errorf("lag = %v s, want 3660", secs)
		}
	})
}
