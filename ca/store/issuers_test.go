package store

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

const (
	sign = storev1.Profile_PROFILE_SIGN
	auth = storev1.Profile_PROFILE_AUTH
)

// initTest records generation 1 of both profiles with one audit record.
func initTest(t *testing.T, s *Store) {
	t.Helper()
	err := s.InitIssuers(
		[]*storev1.IssuerKey{testKey(sign, 1), testKey(auth, 1)},
		[]*storev1.AuditRecord{testAudit("ceremony.complete", "issuers", "2")},
	)
	if err != nil {
		t.Fatalf("InitIssuers: %v", err)
	}
}

func auditCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.AuditRecords(func(*storev1.AuditRecord) error { n++; return nil }); err != nil {
		t.Fatalf("AuditRecords: %v", err)
	}
	return n
}

func mustIssuers(t *testing.T, s *Store) []*storev1.IssuerKey {
	t.Helper()
	keys, err := s.Issuers()
	if err != nil {
		t.Fatalf("Issuers: %v", err)
	}
	return keys
}

func sameKeys(t *testing.T, got, want []*storev1.IssuerKey) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d issuer keys, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("issuer key %d:\n got  %v\n want %v", i, got[i], want[i])
		}
	}
}

// TestInitIssuers (R-K1, R-K3): the first generations are recorded with
// their audit records, ordered by profile and generation.
func TestInitIssuers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		// Given in the "wrong" order; stored ordered by profile, generation.
		keys := []*storev1.IssuerKey{testKey(auth, 1), testKey(sign, 1)}
		keys[0].CreatedAt = timestamppb.New(testNow.AddDate(0, 0, -1))
		audit := []*storev1.AuditRecord{testAudit("issuer.key.generate", "profile", "sign"), testAudit("ceremony.complete")}

		if err := s.InitIssuers(keys, audit); err != nil {
			t.Fatalf("InitIssuers: %v", err)
		}

		if keys[1].CreatedAt != nil || audit[0].Seq != 0 {
			t.Error("InitIssuers modified the caller's messages")
		}
		wantSign := proto.CloneOf(keys[1])
		wantSign.CreatedAt = timestamppb.New(testNow) // filled in from Options.Now
		sameKeys(t, mustIssuers(t, s), []*storev1.IssuerKey{wantSign, keys[0]})

		if ok, err := s.Initialized(); err != nil || !ok {
			t.Errorf("Initialized() = %v, %v, want true, nil", ok, err)
		}
		if n, err := s.VerifyAudit(); err != nil || n != 2 {
			t.Errorf("VerifyAudit() = %d, %v, want 2, nil", n, err)
		}
	})
}

// TestInitIssuersRefused: an invalid set of first generations is refused
// and leaves neither keys nor audit records behind.
func TestInitIssuersRefused(t *testing.T) {
	with := func(p storev1.Profile, gen uint32, edit func(k *storev1.IssuerKey)) *storev1.IssuerKey {
		k := testKey(p, gen)
		edit(k)
		return k
	}
	ok := testAudit("ceremony.complete")
	tests := []struct {
		name    string
		keys    []*storev1.IssuerKey
		audit   []*storev1.AuditRecord
		wantErr error
		wantIn  string
	}{
		{"no keys", nil, []*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys: none given"},
		{"nil key", []*storev1.IssuerKey{testKey(sign, 1), nil}, []*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[1] is nil"},
		{"profile unspecified", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.Profile = 0 })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].profile is unspecified"},
		{"profile unknown", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.Profile = 9 })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].profile has unknown value 9"},
		{"generation 0", []*storev1.IssuerKey{testKey(sign, 0)}, []*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].generation is 0"},
		{"no key label", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.KeyLabel = "" })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].key_label is empty"},
		{"no key id", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.KeyId = nil })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].key_id is empty"},
		{"no certificate", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.CertificateDer = []byte{} })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].certificate_der is empty"},
		{"state unspecified", []*storev1.IssuerKey{with(sign, 1, func(k *storev1.IssuerKey) { k.State = 0 })},
			[]*storev1.AuditRecord{ok}, ErrInvalidArgument, "keys[0].state is unspecified"},
		{"generation gap", []*storev1.IssuerKey{testKey(sign, 1), testKey(auth, 2)}, []*storev1.AuditRecord{ok},
			ErrGeneration, "PROFILE_AUTH generations must be 1, 2"},
		{"generation repeated", []*storev1.IssuerKey{testKey(sign, 1), testKey(sign, 1)}, []*storev1.AuditRecord{ok},
			ErrGeneration, "after 1 comes 2, not 1"},
		{"two active", []*storev1.IssuerKey{testKey(sign, 1), testKey(sign, 2)}, []*storev1.AuditRecord{ok},
			ErrInvalidArgument, "PROFILE_SIGN has more than one ACTIVE generation"},
		{"no audit", []*storev1.IssuerKey{testKey(sign, 1)}, nil, ErrInvalidArgument, "at least one audit record"},
		{"audit seq set", []*storev1.IssuerKey{testKey(sign, 1)},
			[]*storev1.AuditRecord{ok, {Actor: "a", Action: "b", Seq: 4}}, ErrInvalidArgument, "audit[1].seq is set"},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := openTest(t, be.fresh(t))
				err := s.InitIssuers(tt.keys, tt.audit)
				if !errors.Is(err, tt.wantErr) || err == nil || !strings.Contains(err.Error(), tt.wantIn) {
					t.Fatalf("InitIssuers: %v, want %v mentioning %q", err, tt.wantErr, tt.wantIn)
				}
				if done, _ := s.Initialized(); done {
					t.Error("refused InitIssuers left issuer keys behind")
				}
				if n := auditCount(t, s); n != 0 {
					t.Errorf("refused InitIssuers left %d audit records behind", n)
				}
			})
		}
	})
}

// TestInitIssuersTwice: the first generations are recorded once.
func TestInitIssuersTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		initTest(t, s)
		before := mustIssuers(t, s)
		beforeAudit := auditCount(t, s)

		second := testKey(sign, 1)
		second.KeyLabel = "another"
		err := s.InitIssuers([]*storev1.IssuerKey{second}, []*storev1.AuditRecord{testAudit("ceremony.complete")})
		if !errors.Is(err, ErrAlreadyInitialized) {
			t.Fatalf("second InitIssuers: %v, want ErrAlreadyInitialized", err)
		}
		sameKeys(t, mustIssuers(t, s), before)
		if n := auditCount(t, s); n != beforeAudit {
			t.Errorf("audit records: %d after the refused InitIssuers, want %d", n, beforeAudit)
		}
	})
}

// TestAddIssuerKey (R-K1): a rotation adds exactly the next generation and
// supersedes the active one in the same transaction as its audit records;
// anything else is refused and changes nothing.
func TestAddIssuerKey(t *testing.T) {
	superseded := func(k *storev1.IssuerKey) *storev1.IssuerKey {
		k.State = storev1.KeyState_KEY_STATE_SUPERSEDED
		return k
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T, s *Store) // default: initTest
		key      *storev1.IssuerKey
		audit    []*storev1.AuditRecord
		wantErr  error  // nil: accepted
		wantIn   string // in the error
		wantKeys []*storev1.IssuerKey
	}{
		{
			name:  "next generation retires the active one",
			key:   testKey(sign, 2),
			audit: []*storev1.AuditRecord{testAudit("issuer.rotate", "profile", "sign")},
			wantKeys: []*storev1.IssuerKey{
				superseded(testKey(sign, 1)), testKey(sign, 2), testKey(auth, 1),
			},
		},
		{
			name:  "next generation not yet active",
			key:   superseded(testKey(auth, 2)),
			audit: []*storev1.AuditRecord{testAudit("issuer.rotate", "profile", "auth")},
			wantKeys: []*storev1.IssuerKey{
				testKey(sign, 1), testKey(auth, 1), superseded(testKey(auth, 2)),
			},
		},
		{
			name:    "gap",
			key:     testKey(sign, 3),
			audit:   []*storev1.AuditRecord{testAudit("issuer.rotate")},
			wantErr: ErrGeneration,
			wantIn:  "PROFILE_SIGN is at generation 1, so the next is 2, not 3",
		},
		{
			name:    "same generation again",
			key:     testKey(auth, 1),
			audit:   []*storev1.AuditRecord{testAudit("issuer.rotate")},
			wantErr: ErrGeneration,
			wantIn:  "next is 2, not 1",
		},
		{
			name: "profile never initialised",
			setup: func(t *testing.T, s *Store) {
				err := s.InitIssuers([]*storev1.IssuerKey{testKey(sign, 1)}, []*storev1.AuditRecord{testAudit("ceremony.complete")})
				if err != nil {
					t.Fatal(err)
				}
			},
			key:     testKey(auth, 1),
			audit:   []*storev1.AuditRecord{testAudit("issuer.rotate")},
			wantErr: ErrGeneration,
			wantIn:  "PROFILE_AUTH has no generation yet",
		},
		{
			name:    "empty store",
			setup:   func(*testing.T, *Store) {},
			key:     testKey(sign, 1),
			audit:   []*storev1.AuditRecord{testAudit("issuer.rotate")},
			wantErr: ErrGeneration,
			wantIn:  "has no generation yet",
		},
		{
			name:    "invalid key",
			key:     &storev1.IssuerKey{Profile: sign, Generation: 2, KeyLabel: "l", KeyId: []byte{1}},
			audit:   []*storev1.AuditRecord{testAudit("issuer.rotate")},
			wantErr: ErrInvalidArgument,
			wantIn:  "key.certificate_der is empty",
		},
		{
			name:    "no audit",
			key:     testKey(sign, 2),
			wantErr: ErrInvalidArgument,
			wantIn:  "at least one audit record",
		},
		{
			name:    "audit prev_hash set",
			key:     testKey(sign, 2),
			audit:   []*storev1.AuditRecord{{Actor: "a", Action: "b", PrevHash: []byte{1}}},
			wantErr: ErrInvalidArgument,
			wantIn:  "audit[0].prev_hash is set",
		},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := openTest(t, be.fresh(t))
				setup := tt.setup
				if setup == nil {
					setup = initTest
				}
				setup(t, s)
				before := mustIssuers(t, s)
				beforeAudit := auditCount(t, s)

				err := s.AddIssuerKey(tt.key, tt.audit)

				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantIn) {
						t.Fatalf("AddIssuerKey: %v, want %v mentioning %q", err, tt.wantErr, tt.wantIn)
					}
					sameKeys(t, mustIssuers(t, s), before)
					if n := auditCount(t, s); n != beforeAudit {
						t.Errorf("audit records: %d after a refused AddIssuerKey, want %d", n, beforeAudit)
					}
					return
				}
				if err != nil {
					t.Fatalf("AddIssuerKey: %v", err)
				}
				for _, k := range tt.wantKeys {
					k.CreatedAt = timestamppb.New(testNow)
				}
				sameKeys(t, mustIssuers(t, s), tt.wantKeys)
				if n, err := s.VerifyAudit(); err != nil || n != beforeAudit+len(tt.audit) {
					t.Errorf("VerifyAudit() = %d, %v, want %d, nil", n, err, beforeAudit+len(tt.audit))
				}
			})
		}
	})
}

// TestReopenPersists: a store opened again — the same file, the same
// database — has what was written before, and its audit chain goes on
// where it stopped.
func TestReopenPersists(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		s := openTest(t, be)
		initTest(t, s)
		if err := s.AddIssuerKey(testKey(auth, 2), []*storev1.AuditRecord{testAudit("issuer.rotate")}); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(testAudit("crl.sign", "serial", "0a")); err != nil {
			t.Fatal(err)
		}
		keys := mustIssuers(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openTest(t, be)
		sameKeys(t, mustIssuers(t, s), keys)
		if done, err := s.Initialized(); err != nil || !done {
			t.Errorf("Initialized() = %v, %v after reopening, want true, nil", done, err)
		}
		if n, err := s.VerifyAudit(); err != nil || n != 3 {
			t.Errorf("VerifyAudit() = %d, %v after reopening, want 3, nil", n, err)
		}
		// The chain continues where it stopped.
		if err := s.AppendAudit(testAudit("ocsp.sign")); err != nil {
			t.Fatal(err)
		}
		if n, err := s.VerifyAudit(); err != nil || n != 4 {
			t.Errorf("VerifyAudit() = %d, %v, want 4, nil", n, err)
		}
	})
}
