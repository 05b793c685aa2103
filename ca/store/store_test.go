package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// jst is Japan time; the store's clock is pinned to a Japan date in tests.
var jst = time.FixedZone("JST", 9*60*60)

var testNow = time.Date(2026, time.April, 1, 9, 0, 0, 0, jst)

// testPath is a store path under a directory that does not exist yet.
func testPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "ca", "shomei.db")
}

// openTest opens the store at path with a pinned clock and closes it when the
// test ends.
func openTest(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{Timeout: 100 * time.Millisecond, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// withFile opens the store file directly with bbolt, as someone with access to
// the disk could, and runs fn in a write transaction. The store must be
// closed.
func withFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open(%s): %v", path, err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatalf("editing %s: %v", path, err)
	}
}

func testKey(p storev1.Profile, generation uint32) *storev1.IssuerKey {
	return &storev1.IssuerKey{
		Profile:        p,
		Generation:     generation,
		KeyLabel:       fmt.Sprintf("shomei-%s-%d", p, generation),
		KeyId:          []byte{byte(p), byte(generation), 0xa5},
		KeyAlgorithm:   "ecdsa-p256",
		CertificateDer: []byte{0x30, 0x03, 0x02, 0x01, byte(generation)},
		State:          storev1.KeyState_KEY_STATE_ACTIVE,
		TokenLabel:     "shomei-test",
	}
}

func testAudit(action string, kv ...string) *storev1.AuditRecord {
	r := &storev1.AuditRecord{Actor: "operator-1", Action: action}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Fields = append(r.Fields, &storev1.AuditField{Key: kv[i], Value: kv[i+1]})
	}
	return r
}

func TestOpenNewStore(t *testing.T) {
	path := testPath(t)
	s := openTest(t, path)

	if got := s.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	for name, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
	if ok, err := s.Initialized(); err != nil || ok {
		t.Errorf("Initialized() = %v, %v on a new store, want false, nil", ok, err)
	}
	if n, err := s.VerifyAudit(); err != nil || n != 0 {
		t.Errorf("VerifyAudit() = %d, %v on a new store, want 0, nil", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	withFile(t, path, func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %q missing", name)
			}
		}
		v, ok := decodeSchemaVersion(tx.Bucket(bucketMeta).Get(metaSchemaVersion))
		if !ok || v != 1 {
			t.Errorf("schema version = %d (ok %v), want 1", v, ok)
		}
		return nil
	})
}

func TestOpenInvalidArguments(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts Options
		want string
	}{
		{"empty path", "", Options{}, "empty path"},
		{"negative timeout", filepath.Join(t.TempDir(), "s.db"), Options{Timeout: -time.Second}, "Options.Timeout is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v, want ErrInvalidArgument mentioning %q", err, tt.want)
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	path := testPath(t)
	first := openTest(t, path)

	const timeout = 100 * time.Millisecond
	start := time.Now()
	second, err := Open(path, Options{Timeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a store in use succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %s", err, path)
	}
	// bbolt polls the lock every 50ms and may give up that much early.
	if elapsed > timeout+time.Second {
		t.Errorf("second Open gave up after %s, want within about %s", elapsed, timeout)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, path) // released with Close
}

func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(tx *bolt.Tx) error
		wantIn string
	}{
		{
			name: "newer version",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, encodeSchemaVersion(2))
			},
			wantIn: "found 2, expected 1",
		},
		{
			name: "version zero",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, encodeSchemaVersion(0))
			},
			wantIn: "found 0, expected 1",
		},
		{
			name: "version missing",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Delete(metaSchemaVersion)
			},
			wantIn: "found none, expected 1",
		},
		{
			name: "version unreadable",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, []byte("v1"))
			},
			wantIn: "found unreadable",
		},
		{
			name: "not a shomei store",
			edit: func(tx *bolt.Tx) error {
				return tx.DeleteBucket(bucketMeta)
			},
			wantIn: "not a shomei store",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			if err := openTest(t, path).Close(); err != nil {
				t.Fatal(err)
			}
			withFile(t, path, tt.edit)

			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Open: %v, want ErrSchemaVersion mentioning %q", err, tt.wantIn)
			}

			// The refused open changed nothing: it still fails the same way.
			s, again := Open(path, Options{})
			if again == nil {
				s.Close()
			}
			if again == nil || again.Error() != err.Error() {
				t.Errorf("second Open: %v, want %v", again, err)
			}
		})
	}
}
