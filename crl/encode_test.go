package crl_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/crl"
)

// p384Fixture is an ECDSA P-384 AUTH issuer, for ecdsa-with-SHA384.
var p384Fixture = sync.OnceValue(func() *fixture {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		panic(err)
	}
	issuer, err := newIssuer(issuer.DefaultDN(auth), key)
	if err != nil {
		panic(err)
	}
	return &fixture{name: "ecdsa-p384", profile: auth, key: key, issuer: issuer,
		partition: partition(auth, "auth", "13221", "清瀬市"), other: partition(auth, "auth", "13222", "東久留米市")}
})

// randomRequest is a valid request of f with n entries drawn from rng:
// serials of 1 to 20 octets (with and without the top bit set), every
// reason, invalidityDates or none, times with fractions of a second in
// several zones, and thisUpdate, nextUpdate, revocationDates and
// invalidityDates on both sides of the UTCTime/GeneralizedTime switch at
// 2050 (and near 1950, where UTCTime starts).
func randomRequest(rng *mrand.Rand, f *fixture, n int) crl.Request {
	zones := []*time.Location{time.UTC, jst, time.FixedZone("HST", -10*60*60)}
	boundary := time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)
	// at is a time near one of a few instants, in a random zone.
	at := func(near ...time.Time) time.Time {
		t := near[rng.IntN(len(near))].Add(time.Duration(rng.Int64N(int64(4*time.Second))) - 2*time.Second)
		if rng.IntN(4) == 0 {
			t = near[rng.IntN(len(near))].Add(-time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		}
		if t.Before(start) {
			t = start.Add(time.Duration(rng.Int64N(int64(time.Second))))
		}
		return t.In(zones[rng.IntN(len(zones))])
	}
	thisUpdate := at(boundary, boundary.Add(-time.Second), start.Add(time.Hour), thisUpdate, time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC))
	nextUpdate := thisUpdate.Add(time.Second + time.Duration(rng.Int64N(int64(48*time.Hour))))
	reasons := []int{0, 1, 2, 3, 4, 5, 9}
	entries := make([]crl.Entry, n)
	seen := map[string]bool{}
	for i := range entries {
		var sn *big.Int
		for sn == nil || sn.Sign() == 0 || seen[sn.String()] {
			b := make([]byte, 1+rng.IntN(20))
			for k := range b {
				b[k] = byte(rng.Uint32())
			}
			if len(b) == 20 {
				b[0] &= 0x7f // 159 bits at most
			}
			sn = new(big.Int).SetBytes(b)
		}
		seen[sn.String()] = true
		revoked := at(thisUpdate, boundary, boundary.Add(-time.Second), start)
		for revoked.Truncate(time.Second).After(thisUpdate.Truncate(time.Second)) {
			revoked = thisUpdate.Add(-time.Duration(rng.Int64N(int64(time.Hour)))).In(revoked.Location())
		}
		if revoked.Before(start) {
			revoked = start
		}
		e := crl.Entry{Serial: sn, RevokedAt: revoked, Reason: reasons[rng.IntN(len(reasons))]}
		if rng.IntN(3) > 0 {
			e.InvalidityDate = at(revoked, boundary, start, time.Date(9999, 12, 31, 23, 59, 57, 0, time.UTC))
		}
		entries[i] = e
	}
	numbers := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(127), big.NewInt(128), new(big.Int).Lsh(big.NewInt(1), 158), new(big.Int).SetUint64(rng.Uint64())}
	req := request(f, entries)
	req.Number = numbers[rng.IntN(len(numbers))]
	req.ThisUpdate, req.NextUpdate = thisUpdate, nextUpdate
	return req
}

// TestBuildMatchesReference builds random requests with Build and with
// BuildReference, the x509.CreateRevocationList path Build replaced, and
// requires the same TBSCertList, byte for byte; RSA PKCS #1 v1.5
// signatures are deterministic, so for RSA the whole CRL is the same.
func TestBuildMatchesReference(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 2050))
	fs := append(fixtures(), p384Fixture())
	sizes := []int{0, 1, 2, 3, 10, 127, 128, 1000}
	for i := range 240 {
		f := fs[i%len(fs)]
		n := sizes[i%len(sizes)]
		if i >= 2*len(sizes)*len(fs) {
			n = rng.IntN(300)
		}
		req := randomRequest(rng, f, n)
		t.Run(fmt.Sprintf("%d/%s/%d", i, f.name, n), func(t *testing.T) {
			want, err := crl.BuildReference(req)
			if err != nil {
				t.Fatalf("BuildReference: %v", err)
			}
			got, err := crl.Build(req)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			wantList, err := x509.ParseRevocationList(want)
			if err != nil {
				t.Fatal(err)
			}
			gotList, err := x509.ParseRevocationList(got)
			if err != nil {
				t.Fatalf("ParseRevocationList: %v", err)
			}
			if !bytes.Equal(gotList.RawTBSRevocationList, wantList.RawTBSRevocationList) {
				t.Fatalf("TBSCertList differs from x509.CreateRevocationList's (thisUpdate %v, nextUpdate %v)\n got %x\nwant %x",
					req.ThisUpdate, req.NextUpdate, gotList.RawTBSRevocationList, wantList.RawTBSRevocationList)
			}
			if f.profile == sign && !bytes.Equal(got, want) {
				t.Errorf("RSA CRL differs from x509.CreateRevocationList's")
			}
			if err := gotList.CheckSignatureFrom(f.issuer); err != nil {
				t.Errorf("CheckSignatureFrom: %v", err)
			}
			if len(gotList.Raw) != len(got) {
				t.Errorf("%d bytes after the CRL", len(got)-len(gotList.Raw))
			}
			if err := crl.Check(got, req); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}
