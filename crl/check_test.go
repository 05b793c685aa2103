package crl_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// idpValue encodes an issuingDistributionPoint naming uri and the DER
// directoryName, in that order or reversed, with or without
// onlyContainsUserCerts.
func idpValue(uri string, directoryName []byte, reversed, onlyUser bool) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				addURI := func() {
					b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(uri)) })
				}
				addDN := func() {
					b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(directoryName) })
				}
				if reversed {
					addDN()
					addURI()
				} else {
					addURI()
					addDN()
				}
			})
		})
		if onlyUser {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
		}
	})
	return b.BytesOrPanic()
}

// editExtension changes the CRL extension oid in place.
func editExtension(oid asn1.ObjectIdentifier, edit func(*pkix.Extension)) func(*tbsCertList) {
	return func(tbs *tbsCertList) {
		for i := range tbs.Extensions {
			if tbs.Extensions[i].Id.Equal(oid) {
				edit(&tbs.Extensions[i])
			}
		}
	}
}

// dropExtension removes the CRL extension oid.
func dropExtension(oid asn1.ObjectIdentifier) func(*tbsCertList) {
	return func(tbs *tbsCertList) {
		tbs.Extensions = slices.DeleteFunc(tbs.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oid) })
	}
}

// editEntryExtension changes the first entry extension oid in place, or
// with add, adds it to the first entry without extensions.
func editEntryExtension(oid asn1.ObjectIdentifier, add bool, edit func(*pkix.Extension)) func(*tbsCertList) {
	return func(tbs *tbsCertList) {
		for i := range tbs.Revoked {
			exts := tbs.Revoked[i].Extensions
			if add && len(exts) == 0 {
				e := pkix.Extension{Id: oid}
				edit(&e)
				tbs.Revoked[i].Extensions = []pkix.Extension{e}
				return
			}
			for k := range exts {
				if !add && exts[k].Id.Equal(oid) {
					edit(&exts[k])
					return
				}
			}
		}
		panic("no entry to edit")
	}
}

// TestCheck makes CRLs that differ from their request in one way each,
// signed by the issuer unless the case is about the signature, and checks
// that Check says what differs.
func TestCheck(t *testing.T) {
	for _, f := range fixtures() {
		req, good := sample(t, f)
		otherName, err := f.other.DistributionPoint.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ownName, err := f.partition.DistributionPoint.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// built builds the CRL of a changed copy of req.
		built := func(edit func(*crl.Request)) func(*testing.T) []byte {
			return func(t *testing.T) []byte {
				r := req
				r.Entries = slices.Clone(req.Entries)
				edit(&r)
				der, err := crl.Build(r)
				if err != nil {
					t.Fatal(err)
				}
				return der
			}
		}
		// resigned re-signs good with the issuer key after edit.
		resigned := func(edit func(*tbsCertList)) func(*testing.T) []byte {
			return func(t *testing.T) []byte { return tamper(t, good, f.key, edit) }
		}
		sha384 := map[string]asn1.ObjectIdentifier{
			"rsa-2048":   {1, 2, 840, 113549, 1, 1, 12},
			"ecdsa-p256": {1, 2, 840, 10045, 4, 3, 3},
		}[f.name]

		for _, tc := range []struct {
			name string
			crl  func(*testing.T) []byte
			want string // "" for a CRL that passes
		}{
			{"as built", func(*testing.T) []byte { return good }, ""},
			{"re-signed unchanged", resigned(func(*tbsCertList) {}), ""},

			{"not DER", func(*testing.T) []byte { return good[:len(good)-10] }, "not a CRL Go can parse"},
			{"trailing bytes", func(*testing.T) []byte { return append(slices.Clone(good), 0) }, "1 bytes after the CRL"},
			{"signature flipped", func(*testing.T) []byte {
				bad := slices.Clone(good)
				bad[len(bad)-1] ^= 1
				return bad
			}, "signature does not verify"},
			{"signed by the holder's key", func(t *testing.T) []byte {
				return tamper(t, good, key("holder"), func(tbs *tbsCertList) {
					tbs.Signature.Algorithm = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
					tbs.Signature.Parameters = asn1.NullRawValue
				})
			}, "signature does not verify"},
			{"SHA-384", resigned(func(tbs *tbsCertList) { tbs.Signature.Algorithm = sha384 }), "signature algorithm"},

			{"wrong issuer name", resigned(func(tbs *tbsCertList) { tbs.Issuer = asn1.RawValue{FullBytes: otherName} }),
				"issuer name is not the issuer certificate's subject"},
			{"thisUpdate", built(func(r *crl.Request) { r.ThisUpdate = r.ThisUpdate.Add(time.Hour) }), "thisUpdate 2026-02-01T02:00:00Z, want 2026-02-01T01:00:00Z"},
			{"nextUpdate", built(func(r *crl.Request) { r.NextUpdate = r.NextUpdate.Add(time.Hour) }), "nextUpdate"},
			{"no nextUpdate", resigned(func(tbs *tbsCertList) { tbs.NextUpdate = asn1.RawValue{} }), "no nextUpdate"},
			{"thisUpdate as GeneralizedTime", resigned(func(tbs *tbsCertList) {
				tbs.ThisUpdate = asn1.RawValue{FullBytes: append([]byte{byte(cbasn1.GeneralizedTime), 15}, "20260201010000Z"...)}
			}), "thisUpdate is not UTCTime through 2049 and GeneralizedTime from 2050"},

			{"IDP not critical", resigned(editExtension(oidIssuingDistributionPoint, func(e *pkix.Extension) { e.Critical = false })),
				"issuingDistributionPoint is non-critical, want critical"},
			{"no IDP", resigned(dropExtension(oidIssuingDistributionPoint)), "no issuingDistributionPoint extension"},
			{"IDP of another partition", built(func(r *crl.Request) { r.Partition = f.other }), "names URI"},
			{"IDP of another municipality's name", resigned(editExtension(oidIssuingDistributionPoint, func(e *pkix.Extension) {
				e.Value = idpValue(f.partition.URL, otherName, false, true)
			})), "names directoryName C=JP, O=JPKI"},
			{"IDP names reversed", resigned(editExtension(oidIssuingDistributionPoint, func(e *pkix.Extension) {
				e.Value = idpValue(f.partition.URL, ownName, true, true)
			})), "fullName is not the URI then the directoryName"},
			{"IDP without onlyContainsUserCerts", resigned(editExtension(oidIssuingDistributionPoint, func(e *pkix.Extension) {
				e.Value = idpValue(f.partition.URL, ownName, false, false)
			})), "lacks onlyContainsUserCerts TRUE"},

			{"no cRLNumber", resigned(dropExtension(oidCRLNumber)), "no cRLNumber extension"},
			{"wrong cRLNumber", built(func(r *crl.Request) { r.Number = big.NewInt(41) }), "cRLNumber 41, want 42"},
			{"two cRLNumbers", resigned(func(tbs *tbsCertList) {
				tbs.Extensions = append(tbs.Extensions, pkix.Extension{Id: oidCRLNumber, Value: []byte{2, 1, 43}})
			}), "2 cRLNumber extensions"},
			{"extra extension", resigned(func(tbs *tbsCertList) {
				tbs.Extensions = append(tbs.Extensions, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: []byte{2, 1, 41}})
			}), "unexpected extension 2.5.29.27 (critical)"},
			{"extensions out of order", resigned(func(tbs *tbsCertList) { slices.Reverse(tbs.Extensions) }), "extensions out of order"},

			{"entries unsorted", resigned(func(tbs *tbsCertList) { slices.Reverse(tbs.Revoked) }), "entries must be in ascending serial order"},
			{"duplicate entry", resigned(func(tbs *tbsCertList) {
				tbs.Revoked = slices.Insert(tbs.Revoked, 1, tbs.Revoked[0])
			}), "is listed twice"},
			{"entry missing", built(func(r *crl.Request) { r.Entries = r.Entries[1:] }), "of the request is missing"},
			{"entry added", built(func(r *crl.Request) {
				r.Entries = append(r.Entries, crl.Entry{Serial: testenv.Serial(), RevokedAt: thisUpdate})
			}), "is not in the request"},
			{"empty revokedCertificates", func(t *testing.T) []byte {
				r := request(f, nil)
				der, err := crl.Build(r)
				if err != nil {
					t.Fatal(err)
				}
				return tamper(t, der, f.key, func(tbs *tbsCertList) { tbs.Revoked = []pkix.RevokedCertificate{} })
			}, "revokedCertificates is present but empty"},
			{"revocationDate", built(func(r *crl.Request) { r.Entries[0].RevokedAt = r.Entries[0].RevokedAt.Add(-time.Hour) }), "revocationDate"},

			{"wrong reason", built(func(r *crl.Request) { r.Entries[0].Reason = keyCompromise }), "reasonCode 1, want 3 (affiliationChanged)"},
			{"reason missing", built(func(r *crl.Request) { r.Entries[0].Reason = unspecified }), "no reasonCode, want 3 (affiliationChanged)"},
			{"reasonCode 0 written", resigned(editEntryExtension(oidReasonCode, true, func(e *pkix.Extension) { e.Value = []byte{0x0a, 1, 0} })),
				"reason 0 (unspecified) is written as no reasonCode"},
			{"reasonCode critical", resigned(editEntryExtension(oidReasonCode, false, func(e *pkix.Extension) { e.Critical = true })),
				"reasonCode is critical"},
			{"wrong invalidityDate", built(func(r *crl.Request) { r.Entries[0].InvalidityDate = r.Entries[0].InvalidityDate.Add(time.Hour) }),
				"invalidityDate 2026-01-19T16:00:00Z, want 2026-01-19T15:00:00Z"},
			{"invalidityDate missing", built(func(r *crl.Request) { r.Entries[0].InvalidityDate = time.Time{} }), "no invalidityDate"},
			{"invalidityDate not asked for", built(func(r *crl.Request) { r.Entries[4].InvalidityDate = thisUpdate }), "has an invalidityDate; the request has none"},
			{"invalidityDate as UTCTime", resigned(editEntryExtension(oidInvalidityDate, false, func(e *pkix.Extension) {
				e.Value, _ = asn1.Marshal(time.Date(2026, 1, 19, 15, 0, 0, 0, time.UTC))
			})), "is not a DER GeneralizedTime"},
			{"unknown entry extension", resigned(editEntryExtension(asn1.ObjectIdentifier{2, 5, 29, 29}, true, func(e *pkix.Extension) {
				e.Value = []byte{0x30, 0}
			})), "unexpected extension 2.5.29.29"},
		} {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				err := crl.Check(tc.crl(t), req)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("Check: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("Check passed, want a mismatch")
				}
				t.Logf("Check: %v", err)
				if !errors.Is(err, crl.ErrMismatch) {
					t.Errorf("error %v does not wrap ErrMismatch", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q\ndoes not contain %q", err, tc.want)
				}
				if !strings.Contains(err.Error(), "partition "+f.partition.Name+": ") {
					t.Errorf("error %q does not name the partition", err)
				}
			})
		}
	}
}

// TestCheckLimitsProblems checks that a CRL differing in every entry gives
// a bounded error.
func TestCheckLimitsProblems(t *testing.T) {
	f := fixtures()[1]
	var entries []crl.Entry
	for range 500 {
		entries = append(entries, crl.Entry{Serial: testenv.Serial(), RevokedAt: thisUpdate.Add(-time.Hour), Reason: affiliationChanged})
	}
	req := request(f, entries)
	der, err := crl.Build(req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range req.Entries {
		req.Entries[i].Reason = superseded
	}
	err = crl.Check(der, req)
	if n := strings.Count(err.Error(), "\n") + 1; n != 11 {
		t.Errorf("%d lines, want 10 and a count:\n%v", n, err)
	}
	if !strings.Contains(err.Error(), "and 490 more: reasonCode") {
		t.Errorf("error does not count the rest: %v", err)
	}
}
