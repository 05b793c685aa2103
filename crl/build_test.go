package crl_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"maps"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// TestBuild builds CRLs for both issuers and checks them with Go's parser,
// the certificates' cRLDistributionPoints, Check and zlint.
func TestBuild(t *testing.T) {
	for _, f := range fixtures() {
		cert := issue(t, f, f.partition)
		for _, tc := range []struct {
			name    string
			entries []crl.Entry
		}{
			{"empty", nil},
			{"one unspecified", []crl.Entry{{Serial: testenv.Serial(), RevokedAt: thisUpdate.Add(-time.Hour)}}},
			{"every reason", revocations(cert.SerialNumber, testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial())},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				req := request(f, tc.entries)
				given := slices.Clone(tc.entries)
				der, err := crl.Build(req)
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if !slices.EqualFunc(given, tc.entries, func(a, b crl.Entry) bool { return a.Serial == b.Serial }) {
					t.Error("Build reordered the request's entries")
				}
				rl, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatalf("ParseRevocationList: %v", err)
				}
				if err := rl.CheckSignatureFrom(f.issuer); err != nil {
					t.Errorf("CheckSignatureFrom: %v", err)
				}
				wantAlg := map[string]x509.SignatureAlgorithm{"rsa-2048": x509.SHA256WithRSA, "ecdsa-p256": x509.ECDSAWithSHA256}[f.name]
				if rl.SignatureAlgorithm != wantAlg {
					t.Errorf("signature algorithm %v, want %v", rl.SignatureAlgorithm, wantAlg)
				}
				if !bytes.Equal(rl.RawIssuer, f.issuer.RawSubject) {
					t.Error("issuer name is not the issuer's RawSubject")
				}
				if !bytes.Equal(rl.AuthorityKeyId, f.issuer.SubjectKeyId) {
					t.Error("authorityKeyIdentifier is not the issuer's subjectKeyIdentifier")
				}
				if rl.Number.Cmp(big.NewInt(42)) != 0 {
					t.Errorf("cRLNumber %v", rl.Number)
				}
				if !rl.ThisUpdate.Equal(thisUpdate) || !rl.NextUpdate.Equal(nextUpdate) {
					t.Errorf("thisUpdate %v nextUpdate %v", rl.ThisUpdate, rl.NextUpdate)
				}

				// The issuingDistributionPoint is critical and names the
				// partition with the certificate's own bytes.
				idp, critical := extension(t, rl.Extensions, oidIssuingDistributionPoint)
				if !critical {
					t.Error("issuingDistributionPoint is not critical")
				}
				dp, _ := extension(t, cert.Extensions, oidCRLDistributionPoints)
				if got, want := distributionPointFullName(t, idp, false), distributionPointFullName(t, dp, true); !bytes.Equal(got, want) {
					t.Errorf("IDP fullName %x\nis not the certificate's cRLDistributionPoints fullName %x", got, want)
				}
				if !bytes.HasSuffix(idp, []byte{0x81, 0x01, 0xff}) {
					t.Errorf("IDP %x does not end with onlyContainsUserCerts TRUE", idp)
				}
				if len(rl.Extensions) != 3 {
					t.Errorf("%d CRL extensions, want authorityKeyIdentifier, cRLNumber, issuingDistributionPoint", len(rl.Extensions))
				}

				checkEntries(t, rl, tc.entries)
				if len(tc.entries) == 0 && hasRevokedCertificates(t, rl.RawTBSRevocationList) {
					t.Error("an empty CRL has a revokedCertificates field")
				}
				if err := crl.Check(der, req); err != nil {
					t.Errorf("Check: %v", err)
				}
				lintCRL(t, der)
			})
		}
	}
}

// checkEntries compares the parsed entries with the requested ones: in
// ascending serial order, times to the second, reasonCode absent for 0,
// invalidityDate a GeneralizedTime when set.
func checkEntries(t *testing.T, rl *x509.RevocationList, entries []crl.Entry) {
	t.Helper()
	want := slices.SortedFunc(slices.Values(entries), func(a, b crl.Entry) int { return a.Serial.Cmp(b.Serial) })
	got := rl.RevokedCertificateEntries
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.SerialNumber.Cmp(w.Serial) != 0 {
			t.Errorf("entry %d: serial %x, want %x", i, g.SerialNumber, w.Serial)
			continue
		}
		if wt := w.RevokedAt.Truncate(time.Second); !g.RevocationTime.Equal(wt) {
			t.Errorf("serial %x: revocationDate %v, want %v", w.Serial, g.RevocationTime, wt)
		}
		if g.ReasonCode != w.Reason {
			t.Errorf("serial %x: reason %d, want %d", w.Serial, g.ReasonCode, w.Reason)
		}
		var reason, invalidity []byte
		for _, e := range g.Extensions {
			if e.Critical {
				t.Errorf("serial %x: critical entry extension %v", w.Serial, e.Id)
			}
			switch {
			case e.Id.Equal(oidReasonCode):
				reason = e.Value
			case e.Id.Equal(oidInvalidityDate):
				invalidity = e.Value
			default:
				t.Errorf("serial %x: unexpected entry extension %v", w.Serial, e.Id)
			}
		}
		if (reason != nil) != (w.Reason != 0) {
			t.Errorf("serial %x: reasonCode present %v for reason %d", w.Serial, reason != nil, w.Reason)
		}
		if w.InvalidityDate.IsZero() {
			if invalidity != nil {
				t.Errorf("serial %x: invalidityDate without one in the request", w.Serial)
			}
			continue
		}
		in := cryptobyte.String(invalidity)
		var when time.Time
		if !in.PeekASN1Tag(cbasn1.GeneralizedTime) || !in.ReadASN1GeneralizedTime(&when) || !when.Equal(w.InvalidityDate.Truncate(time.Second)) {
			t.Errorf("serial %x: invalidityDate %x, want GeneralizedTime %v", w.Serial, invalidity, w.InvalidityDate.UTC())
		}
	}
}

// hasRevokedCertificates reports whether a TBSCertList has the optional
// revokedCertificates field.
func hasRevokedCertificates(t *testing.T, raw []byte) bool {
	in := cryptobyte.String(raw)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) || !tbs.SkipASN1(cbasn1.UTCTime) || !tbs.SkipASN1(cbasn1.UTCTime) {
		t.Fatal("malformed TBSCertList")
	}
	return tbs.PeekASN1Tag(cbasn1.SEQUENCE)
}

// rfc5280Lints is zlint's registry cut down to its RFC 5280 lints.
var rfc5280Lints = sync.OnceValues(func() (lint.Registry, error) {
	return lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC5280}})
})

// lintCRL runs zlint's RFC 5280 CRL lints and fails on any warning or error.
func lintCRL(t *testing.T, der []byte) {
	t.Helper()
	registry, err := rfc5280Lints()
	if err != nil {
		t.Fatal(err)
	}
	rl, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("zcrypto: %v", err)
	}
	results := zlint.LintRevocationListEx(rl, registry).Results
	ran := 0
	for _, name := range slices.Sorted(maps.Keys(results)) {
		r := results[name]
		switch r.Status {
		case lint.Warn, lint.Error, lint.Fatal:
			t.Errorf("zlint %s: %s %s", name, r.Status, r.Details)
		case lint.Pass:
			ran++
		}
	}
	if ran == 0 {
		t.Error("no zlint CRL lint passed")
	}
	t.Logf("zlint: %d RFC 5280 CRL lints passed", ran)
}

// TestBuildRefuses checks that bad requests are refused, naming the field.
func TestBuildRefuses(t *testing.T) {
	f := fixtures()[0]
	noCRLSign := *f.issuer
	noCRLSign.KeyUsage = x509.KeyUsageCertSign
	noSKI := *f.issuer
	noSKI.SubjectKeyId = nil
	sn := testenv.Serial()
	ok := crl.Entry{Serial: sn, RevokedAt: thisUpdate.Add(-time.Hour), Reason: affiliationChanged}
	entry := func(edit func(*crl.Entry)) func(*crl.Request) {
		return func(r *crl.Request) {
			e := ok
			edit(&e)
			r.Entries = []crl.Entry{e}
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*crl.Request)
		want string
	}{
		{"no issuer", func(r *crl.Request) { r.Issuer = nil }, "Request.Issuer: required"},
		{"issuer without cRLSign", func(r *crl.Request) { r.Issuer = &noCRLSign }, "Request.Issuer: no cRLSign"},
		{"issuer without SKI", func(r *crl.Request) { r.Issuer = &noSKI }, "Request.Issuer: no subjectKeyIdentifier"},
		{"no signer", func(r *crl.Request) { r.Signer = nil }, "Request.Signer: required"},
		{"another key", func(r *crl.Request) { r.Signer = key("other-p256") }, "Request.Signer: its public key is not the issuer"},
		{"no number", func(r *crl.Request) { r.Number = nil }, "Request.Number: required"},
		{"negative number", func(r *crl.Request) { r.Number = big.NewInt(-1) }, "Request.Number: negative"},
		{"number over 20 octets", func(r *crl.Request) { r.Number = new(big.Int).Lsh(big.NewInt(1), 159) }, "Request.Number: 160 bits"},
		{"no thisUpdate", func(r *crl.Request) { r.ThisUpdate = time.Time{} }, "Request.ThisUpdate: required"},
		{"nextUpdate = thisUpdate", func(r *crl.Request) { r.NextUpdate = r.ThisUpdate.Add(999 * time.Millisecond) }, "Request.NextUpdate: not after ThisUpdate"},
		{"no partition name", func(r *crl.Request) { r.Partition.Name = "" }, "Request.Partition.Name: required"},
		{"name not in the URL", func(r *crl.Request) { r.Partition.Name = "sign-g1-13222" }, "Request.Partition.URL: does not end in /sign-g1-13222.crl"},
		{"https URL", func(r *crl.Request) { r.Partition.URL = "https://shomei.example/crl/sign-g1-13221.crl" }, `scheme "https"`},
		{"URL with a query", func(r *crl.Request) { r.Partition.URL += "?x=1" }, "no user, query or fragment"},
		{"no directoryName", func(r *crl.Request) { r.Partition.DistributionPoint = nil }, "Request.Partition.DistributionPoint: dn: empty name"},
		{"bad directoryName", func(r *crl.Request) { r.Partition.DistributionPoint = x509enc.DN{{Type: "X", Value: "y"}} }, "Request.Partition.DistributionPoint"},
		{"no serial", entry(func(e *crl.Entry) { e.Serial = nil }), "Request.Entries[0].Serial: required"},
		{"serial 0", entry(func(e *crl.Entry) { e.Serial = big.NewInt(0) }), "Request.Entries[0].Serial: must be positive"},
		{"no revokedAt", entry(func(e *crl.Entry) { e.RevokedAt = time.Time{} }), "Request.Entries[0].RevokedAt: required"},
		{"revoked after thisUpdate", entry(func(e *crl.Entry) { e.RevokedAt = thisUpdate.Add(time.Second) }), "Request.Entries[0].RevokedAt: after the CRL's ThisUpdate"},
		{"certificateHold", entry(func(e *crl.Entry) { e.Reason = 6 }), "certificateHold, but revocation is permanent"},
		{"reason 7", entry(func(e *crl.Entry) { e.Reason = 7 }), "Request.Entries[0].Reason: 7"},
		{"removeFromCRL", entry(func(e *crl.Entry) { e.Reason = 8 }), "delta CRLs"},
		{"aACompromise", entry(func(e *crl.Entry) { e.Reason = 10 }), "attribute certificates"},
		{"negative reason", entry(func(e *crl.Entry) { e.Reason = -1 }), "Request.Entries[0].Reason: -1"},
		{"invalidity in 1900", entry(func(e *crl.Entry) { e.InvalidityDate = time.Date(1900, 1, 1, 0, 0, 0, 0, jst) }), "Request.Entries[0].InvalidityDate: year 1899"},
		{"duplicate serial", func(r *crl.Request) {
			r.Entries = []crl.Entry{ok, {Serial: testenv.Serial(), RevokedAt: ok.RevokedAt}, {Serial: new(big.Int).Set(sn), RevokedAt: ok.RevokedAt}}
		}, "Request.Entries[2].Serial: " + sn.Text(16) + " is also Entries[0]"},
		{"many bad entries", func(r *crl.Request) {
			for range 1000 {
				r.Entries = append(r.Entries, crl.Entry{Serial: testenv.Serial(), RevokedAt: ok.RevokedAt, Reason: 6})
			}
		}, "and 990 more: Request.Entries[].Reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(f, []crl.Entry{ok})
			tc.edit(&req)
			der, err := crl.Build(req)
			if err == nil {
				t.Fatalf("Build made %d bytes, want an error", len(der))
			}
			if !errors.Is(err, crl.ErrInvalidRequest) {
				t.Errorf("error %v does not wrap ErrInvalidRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if err := crl.Check([]byte{0x30, 0}, req); tc.name != "no signer" && tc.name != "another key" && !errors.Is(err, crl.ErrInvalidRequest) {
				t.Errorf("Check: %v, want the request refused too", err)
			}
		})
	}
}

// TestBuildTimes checks UTCTime and GeneralizedTime choices: a CRL whose
// nextUpdate falls in 2050 and an entry revoked in 2049.
func TestBuildTimes(t *testing.T) {
	f := fixtures()[1]
	req := request(f, []crl.Entry{{Serial: testenv.Serial(), RevokedAt: time.Date(2049, 12, 31, 23, 0, 0, 0, time.UTC), InvalidityDate: time.Date(2049, 12, 1, 0, 0, 0, 0, time.UTC)}})
	req.ThisUpdate = time.Date(2049, 12, 31, 23, 30, 0, 0, time.UTC)
	req.NextUpdate = req.ThisUpdate.Add(24 * time.Hour)
	der, err := crl.Build(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.Check(der, req); err != nil {
		t.Errorf("Check: %v", err)
	}
	// thisUpdate "491231233000Z" as UTCTime, nextUpdate as GeneralizedTime.
	if !bytes.Contains(der, append([]byte{byte(cbasn1.UTCTime), 13}, "491231233000Z"...)) ||
		!bytes.Contains(der, append([]byte{byte(cbasn1.GeneralizedTime), 15}, "20500101233000Z"...)) {
		t.Error("thisUpdate/nextUpdate are not UTCTime through 2049 and GeneralizedTime from 2050")
	}
	if !bytes.Contains(der, append([]byte{byte(cbasn1.GeneralizedTime), 15}, "20491201000000Z"...)) {
		t.Error("invalidityDate in 2049 is not a GeneralizedTime")
	}
}
