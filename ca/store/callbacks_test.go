package store

import (
	"fmt"
	"testing"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestReadCallbackPanic: the store's read methods run the caller's
// callback inside a read transaction (AuditRecords, ForEachCertificate,
// Changes, …). A callback that panics — and a caller that recovers, as
// net/http does for each request — must not leave the transaction open:
// many such panics later, the store still reads, writes and closes. (A
// read transaction left open would hold a pooled connection for good, and
// a store whose pool ran dry waits for ever.)
func TestReadCallbackPanic(t *testing.T) {
	reads := []struct {
		name string
		read func(s *Store, fn func()) error
	}{
		{"AuditRecords", func(s *Store, fn func()) error {
			return s.AuditRecords(func(*storev1.AuditRecord) error { fn(); return nil })
		}},
		{"ForEachCertificate", func(s *Store, fn func()) error {
			return s.ForEachCertificate(func(*storev1.Certificate) error { fn(); return nil })
		}},
		{"Changes", func(s *Store, fn func()) error {
			return s.Changes(0, func(*storev1.StatusChange) error { fn(); return nil })
		}},
	}
	// More panics than a PostgreSQL store has pooled connections (8).
	const panics = 20
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, r := range reads {
			t.Run(r.name, func(t *testing.T) {
				be := be.fresh(t)
				// Not openAt: its cleanup's Close would hang the test
				// binary if the store never gives its connections back.
				s, err := be.open(t, Options{Now: func() time.Time { return t0 }})
				if err != nil {
					t.Fatal(err)
				}
				issueAudited(t, s, Reservation{Certs: []*storev1.Certificate{pending("h1", sign)}, Now: t0})
				// In a goroutine of its own: a store that hangs must fail
				// the test, not stop the test binary.
				done := make(chan error, 1)
				go func() {
					for i := range panics {
						called := false
						func() {
							defer func() { _ = recover() }()
							_ = r.read(s, func() { called = true; panic(fmt.Sprintf("callback %d", i)) })
						}()
						if !called {
							done <- fmt.Errorf("panic %d: the callback was never called", i)
							return
						}
					}
					if _, err := s.VerifyAudit(); err != nil {
						done <- err
						return
					}
					if err := s.AppendAudit(testAudit("after")); err != nil {
						done <- err
						return
					}
					done <- s.Close()
				}()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("after panics in %s callbacks: %v", r.name, err)
					}
				case <-time.After(15 * time.Second):
					t.Fatalf("after panics in %s callbacks the store hangs: their read transactions were left open", r.name)
				}
			})
		}
	})
}
