package main

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ocsp"
)

func TestSerialHex(t *testing.T) {
	tests := []struct {
		serial *big.Int
		want   string
	}{
		{big.NewInt(0), "00"},
		{big.NewInt(1), "01"},
		{big.NewInt(0xabc), "0ABC"}, // two digits per octet, as BN_bn2hex
		{big.NewInt(0x1001), "1001"},
		{new(big.Int).Lsh(big.NewInt(1), 126), "40000000000000000000000000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := serialHex(tc.serial); got != tc.want {
				t.Errorf("serialHex(%v) = %q, want %q", tc.serial, got, tc.want)
			}
		})
	}
}

func TestIndexLine(t *testing.T) {
	notAfter := time.Date(2031, 3, 31, 14, 59, 59, 0, time.UTC)
	revokedAt := time.Date(2026, 5, 1, 10, 0, 0, 0, time.FixedZone("JST", 9*60*60))
	tests := []struct {
		name    string
		e       entry
		want    string
		wantErr bool
	}{
		{name: "valid", e: entry{Serial: big.NewInt(0x1001)},
			want: "V\t310331145959Z\t\t1001\tunknown\t/C=JP/O=JPKI/CN=bench-1001"},
		{name: "revoked, time in UTC", e: entry{Serial: big.NewInt(0xabc), Revoked: true, RevokedAt: revokedAt, Reason: 3},
			want: "R\t310331145959Z\t260501010000Z,affiliationChanged\t0ABC\tunknown\t/C=JP/O=JPKI/CN=bench-0ABC"},
		{name: "reason without a name", e: entry{Serial: big.NewInt(1), Revoked: true, RevokedAt: revokedAt, Reason: 7}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := indexLine(tc.e, notAfter)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("indexLine =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}

func TestNewDataset(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	a, b := newDataset(5000, 0.1, 7, now), newDataset(5000, 0.1, 7, now)
	seen := map[string]bool{}
	revoked := 0
	for i, e := range a.Entries {
		if e.Serial.Cmp(b.Entries[i].Serial) != 0 || e.Revoked != b.Entries[i].Revoked {
			t.Fatalf("entry %d differs between two datasets of one seed", i)
		}
		if e.Serial.Sign() <= 0 || len(e.Serial.Bytes()) != 16 {
			t.Fatalf("serial %X: not positive and 16 octets", e.Serial)
		}
		if seen[serialHex(e.Serial)] {
			t.Fatalf("serial %X twice", e.Serial)
		}
		seen[serialHex(e.Serial)] = true
		if e.Revoked {
			revoked++
			if e.RevokedAt.After(now) || e.RevokedAt.Before(now.Add(-30*24*time.Hour)) {
				t.Errorf("serial %X revoked at %v, not in the 30 days before %v", e.Serial, e.RevokedAt, now)
			}
			if _, err := reasonName(e.Reason); err != nil {
				t.Error(err)
			}
		}
	}
	if revoked < 400 || revoked > 600 {
		t.Errorf("%d of 5000 revoked, want about 500", revoked)
	}
}

// TestBoltSource: the Source answers what the dataset holds, unknown for
// the rest.
func TestBoltSource(t *testing.T) {
	data := newDataset(1000, 0.3, 1, time.Now())
	path := filepath.Join(t.TempDir(), "status.db")
	if err := data.writeBolt(path); err != nil {
		t.Fatal(err)
	}
	src, err := openBoltSource(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for _, e := range data.Entries {
		st, err := src.Status(ctx, nil, e.Serial)
		if err != nil {
			t.Fatal(err)
		}
		want := ocsp.Status{Status: ocsp.Good}
		if e.Revoked {
			want = ocsp.Status{Status: ocsp.Revoked, RevokedAt: e.RevokedAt, Reason: e.Reason}
		}
		if st.Status != want.Status || !st.RevokedAt.Equal(want.RevokedAt) || st.Reason != want.Reason {
			t.Fatalf("serial %X: %+v, want %+v", e.Serial, st, want)
		}
	}
	for _, sn := range []*big.Int{big.NewInt(0), big.NewInt(-1), big.NewInt(0x1001)} {
		st, err := src.Status(ctx, nil, sn)
		if err != nil || st.Status != ocsp.Unknown {
			t.Errorf("serial %v: %+v, %v; want unknown", sn, st, err)
		}
	}
	if _, err := decodeStatus([]byte{storedRevoked, 1}); err == nil {
		t.Error("a truncated revoked status decodes")
	}
}
