package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/store/engine"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// jst is Japan time; the store's clock is pinned to a Japan date in tests.
var jst = time.FixedZone("JST", 9*60*60)

var testNow = time.Date(2026, time.April, 1, 9, 0, 0, 0, jst)

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

// TestOpenNewStore: a new store is laid out with every bucket and the
// current schema version, holds no issuer and an empty audit log, and says
// which engine and where it is.
func TestOpenNewStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)

		if got := s.Driver(); got != be.name {
			t.Errorf("Driver() = %q, want %q", got, be.name)
		}
		wantPath := ""
		if be.name == "bbolt" {
			wantPath = be.loc
		}
		if got := s.Path(); got != wantPath {
			t.Errorf("Path() = %q, want %q", got, wantPath)
		}
		if s.Where() == "" {
			t.Error("Where() is empty")
		}
		if ok, err := s.Initialized(); err != nil || ok {
			t.Errorf("Initialized() = %v, %v on a new store, want false, nil", ok, err)
		}
		if n, err := s.VerifyAudit(); err != nil || n != 0 {
			t.Errorf("VerifyAudit() = %d, %v on a new store, want 0, nil", n, err)
		}
		if c, err := s.Count(); err != nil || c != (Counts{}) {
			t.Errorf("Count() = %+v, %v on a new store, want all zero", c, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		be.raw(t, func(tx engine.Tx) error {
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
	})
}

// TestOpenNewFileModes (bbolt): the store file is the owner's only, in a
// directory only the owner may enter (issue 9 item 12).
func TestOpenNewFileModes(t *testing.T) {
	be := boltBackend(t)
	openTest(t, be)
	for name, want := range map[string]os.FileMode{filepath.Dir(be.loc): 0o700, be.loc: 0o600} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %v, want %v", name, got, want)
		}
	}
}

// TestOpenInvalidArguments (bbolt): Open's own arguments.
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

// TestOpenLocked (bbolt): one process at a time; a second Open waits
// Options.Timeout and fails with ErrLocked naming the file, and Close
// releases the file.
func TestOpenLocked(t *testing.T) {
	be := boltBackend(t)
	path := be.loc
	first := openTest(t, be)

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
	openTest(t, be) // released with Close
}

// TestOpenSchemaVersion: a store is read only by code of its schema
// version; Open refuses any other, or none in a store that holds records,
// with ErrSchemaVersion and changes nothing.
func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(tx engine.Tx) error
		wantIn string
	}{
		{
			name: "newer version",
			edit: func(tx engine.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, encodeSchemaVersion(2))
			},
			wantIn: "found 2, expected 1",
		},
		{
			name: "version zero",
			edit: func(tx engine.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, encodeSchemaVersion(0))
			},
			wantIn: "found 0, expected 1",
		},
		{
			name: "version missing",
			edit: func(tx engine.Tx) error {
				return tx.Bucket(bucketMeta).Delete(metaSchemaVersion)
			},
			wantIn: "found none, expected 1",
		},
		{
			name: "version unreadable",
			edit: func(tx engine.Tx) error {
				return tx.Bucket(bucketMeta).Put(metaSchemaVersion, []byte("v1"))
			},
			wantIn: "found unreadable",
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				be := be.fresh(t)
				// The store holds a record: a store without one and without
				// a version is laid out as new (a new PostgreSQL database
				// has its tables from the migrations before it has a
				// version).
				s := openTest(t, be)
				if err := s.AppendAudit(testAudit("ceremony.start")); err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				be.raw(t, tt.edit)

				s, err := be.open(t, Options{})
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), tt.wantIn) {
					t.Errorf("Open: %v, want ErrSchemaVersion mentioning %q", err, tt.wantIn)
				}

				// The refused open changed nothing: it still fails the same way.
				s, again := be.open(t, Options{})
				if again == nil {
					s.Close()
				}
				if again == nil || again.Error() != err.Error() {
					t.Errorf("second Open: %v, want %v", again, err)
				}
			})
		}
	})
}

// TestOpenForeignBoltFile (bbolt): a bbolt file of another program — with
// buckets and records, but none of the store's — is refused, not taken
// over: Open adds no bucket to it.
func TestOpenForeignBoltFile(t *testing.T) {
	be := boltBackend(t)
	if err := os.MkdirAll(filepath.Dir(be.loc), 0o700); err != nil {
		t.Fatal(err)
	}
	be.raw(t, func(tx engine.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("other_program"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})

	s, err := be.open(t, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a foreign bbolt file succeeded")
	}
	if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "not a shomei store") {
		t.Errorf("Open: %v, want ErrSchemaVersion mentioning %q", err, "not a shomei store")
	}
	be.raw(t, func(tx engine.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) != nil {
				t.Errorf("the refused Open added bucket %q to the foreign file", name)
			}
		}
		return nil
	})
}
