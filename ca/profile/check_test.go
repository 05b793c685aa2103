package profile_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/x509enc"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func TestTemplateRefuses(t *testing.T) {
	issuer := newIssuer(t, sign, key("ca"))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    func() profile.Request
		cfg    func(*profile.Config)
		issuer *x509.Certificate
		want   []string // substrings of the error
	}{
		{name: "AUTH with a name", req: func() profile.Request { r := authRequest(); r.Name = testName; return r },
			want: []string{"Request.Name: must be empty: an AUTH certificate carries no personal data"}},
		{name: "AUTH with every personal field", req: func() profile.Request {
			r := signRequest()
			r.Profile, r.PublicKey = auth, key("holder-auth").Public()
			return r
		}, want: []string{"Request.PrefectureRomaji: must be empty", "Request.MunicipalityRomaji: must be empty",
			"Request.NameMap: must be empty", "Request.DateOfBirth: must be empty", "Request.Sex: must be empty",
			"Request.Address: must be empty", "Request.AddressMap: must be empty"}},
		{name: "sex 4", req: func() profile.Request { r := signRequest(); r.Sex = "4"; return r },
			want: []string{"Request.Sex: must be 1 (male), 2 (female) or 3"}},
		{name: "address of 201 characters", req: func() profile.Request {
			r := signRequest()
			r.Address = strings.Repeat("東", 201)
			r.AddressMap = strings.Repeat("0", 201)
			return r
		}, want: []string{"Request.Address: 201 characters; R-P2 allows 200"}},
		{name: "name map too short", req: func() profile.Request { r := signRequest(); r.NameMap = "0100"; return r },
			want: []string{"Request.NameMap: 4 digits for the 5 characters of Name"}},
		{name: "address map with a 2", req: func() profile.Request {
			r := signRequest()
			r.AddressMap = "2" + r.AddressMap[1:]
			return r
		}, want: []string{"Request.AddressMap: only the digits 0 and 1"}},
		{name: "name without U+3000", req: func() profile.Request { r := signRequest(); r.Name, r.NameMap = "渡邊 太郎", "00000"; return r },
			want: []string{"Request.Name: must be surname, U+3000"}},
		{name: "SIGN missing fields", req: func() profile.Request {
			r := signRequest()
			r.Sex, r.DateOfBirth, r.MunicipalityRomaji = "", "", ""
			return r
		}, want: []string{"Request.Sex: required for SIGN", "Request.DateOfBirth: required", "Request.MunicipalityRomaji: required"}},
		{name: "era does not match the date", req: func() profile.Request { r := signRequest(); r.DateOfBirth = "419801231"; return r },
			want: []string{"Request.DateOfBirth: the era digit does not match the date"}},
		{name: "date that does not exist", req: func() profile.Request { r := signRequest(); r.DateOfBirth = "319810229"; return r },
			want: []string{"Request.DateOfBirth: not an existing date"}},
		{name: "born after issuance", req: func() profile.Request { r := signRequest(); r.DateOfBirth = "520260111"; return r },
			want: []string{"Request.DateOfBirth: after the issuance date"}},
		{name: "empty CN", req: func() profile.Request { r := authRequest(); r.SubjectCN = ""; return r },
			want: []string{"Request.SubjectCN: required"}},
		{name: "Japanese CN", req: func() profile.Request { r := authRequest(); r.SubjectCN = "清瀬"; return r },
			want: []string{"Request.SubjectCN: only PrintableString characters"}},
		{name: "no serial", req: func() profile.Request { r := authRequest(); r.Serial = nil; return r },
			want: []string{"Request.Serial: missing"}},
		{name: "short serial", req: func() profile.Request { r := authRequest(); r.Serial = big.NewInt(12345); return r },
			want: []string{"Request.Serial: 14 bits"}},
		{name: "21-octet serial", req: func() profile.Request { r := authRequest(); r.Serial = new(big.Int).Lsh(big.NewInt(1), 159); return r },
			want: []string{"Request.Serial: 160 bits encode to more than 20 octets"}},
		{name: "notAfter not 23:59:59 JST", req: func() profile.Request {
			r := authRequest()
			r.NotAfter = time.Date(2030, 12, 31, 23, 59, 59, 0, time.UTC)
			return r
		}, want: []string{"Request.NotAfter: 2030-12-31T23:59:59Z is not 23:59:59 JST"}},
		{name: "sub-second notBefore", req: func() profile.Request { r := authRequest(); r.NotBefore = r.NotBefore.Add(time.Millisecond); return r },
			want: []string{"Request.NotBefore: not a whole second"}},
		{name: "RSA-1024 holder key", req: func() profile.Request { r := authRequest(); r.PublicKey = small.Public(); return r },
			want: []string{"Request.PublicKey: RSA key of 1024 bits"}},
		{name: "P-384 holder key", req: func() profile.Request { r := authRequest(); r.PublicKey = key("ca-p384").Public(); return r },
			want: []string{"Request.PublicKey: ECDSA key on P-384"}},
		{name: "unknown profile", req: func() profile.Request { r := authRequest(); r.Profile = 0; return r },
			want: []string{"Request.Profile: PROFILE_UNSPECIFIED is neither SIGN nor AUTH"}},
		{name: "CRL over https", req: func() profile.Request { r := authRequest(); r.CRL.URL = "https://crl.example/x.crl"; return r },
			want: []string{`Request.CRL.URL: scheme "https"; want http`}},
		{name: "no CRL name", req: func() profile.Request { r := authRequest(); r.CRL.Name = nil; return r },
			want: []string{"Request.CRL.Name: dn: empty name"}},
		{name: "no CPS URL", req: authRequest, cfg: func(c *profile.Config) { c.CPSURL = "" },
			want: []string{"Config.CPSURL: required"}},
		{name: "relative OCSP URL", req: authRequest, cfg: func(c *profile.Config) { c.OCSPURL = "/ocsp" },
			want: []string{"Config.OCSPURL: not an absolute URL"}},
		{name: "issuer without SKI", req: authRequest, issuer: func() *x509.Certificate { c := *issuer; c.SubjectKeyId = nil; return &c }(),
			want: []string{"issuer: no subjectKeyIdentifier"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			iss := issuer
			if tc.issuer != nil {
				iss = tc.issuer
			}
			req := tc.req()
			tmpl, err := profile.Template(iss, cfg, req)
			if err == nil {
				t.Fatalf("Template accepted it: %v", tmpl)
			}
			if !errors.Is(err, profile.ErrInvalidRequest) {
				t.Errorf("error does not wrap ErrInvalidRequest: %v", err)
			}
			var fe *profile.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("no FieldError in %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, personal := range []string{testName, testAddress, "319801231", "19801231"} {
				if strings.Contains(err.Error(), personal) {
					t.Errorf("error repeats personal data: %v", err)
				}
			}
		})
	}
}

// marshalSAN encodes R-P2 otherNames the test's own way.
func marshalSAN(values ...string) []byte {
	oids := []asn1.ObjectIdentifier{
		{1, 2, 392, 200149, 8, 5, 5, 1}, {1, 2, 392, 200149, 8, 5, 5, 4}, {1, 2, 392, 200149, 8, 5, 5, 3},
		{1, 2, 392, 200149, 8, 5, 5, 5}, {1, 2, 392, 200149, 8, 5, 5, 2}, {1, 2, 392, 200149, 8, 5, 5, 6},
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for i, v := range values {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oids[i])
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
				})
			})
		}
	})
	return b.BytesOrPanic()
}

func extIndex(tmpl *x509.Certificate, oid string) int {
	return slices.IndexFunc(tmpl.ExtraExtensions, func(e pkix.Extension) bool { return e.Id.String() == oid })
}

// TestCheckCatches signs certificates that differ from the profile in one
// way each and expects Check to say how.
func TestCheckCatches(t *testing.T) {
	signIssuer := newIssuer(t, sign, key("ca"))
	authIssuer := newIssuer(t, auth, key("ca"))
	for _, tc := range []struct {
		name     string
		req      func() profile.Request
		tamper   func(t *testing.T, tmpl *x509.Certificate)    // changes the template before signing
		issuer   func(iss *x509.Certificate) *x509.Certificate // for Template
		parent   func(iss *x509.Certificate) *x509.Certificate // for CreateCertificate
		checkCfg func(*profile.Config)
		checkReq func(*profile.Request)
		want     string
		wantErr  error
	}{
		{name: "extension order", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			e := tmpl.ExtraExtensions
			e[0], e[1] = e[1], e[0]
		}, want: "extensions are [keyUsage (critical), authorityKeyIdentifier, subjectAltName"},
		{name: "SKI before the policies", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			i, j := extIndex(tmpl, cp), extIndex(tmpl, ski)
			e := tmpl.ExtraExtensions
			e[i], e[j] = e[j], e[i]
		}, want: "want [authorityKeyIdentifier, keyUsage (critical), cRLDistributionPoints, certificatePolicies (critical), subjectKeyIdentifier, authorityInfoAccess] in this order"},
		{name: "non-critical policy", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.ExtraExtensions[extIndex(tmpl, cp)].Critical = false
		}, want: "certificatePolicies must be critical"},
		{name: "non-critical key usage", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.ExtraExtensions[extIndex(tmpl, ku)].Critical = false
		}, want: "keyUsage must be critical"},
		{name: "critical CRL distribution points", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.ExtraExtensions[extIndex(tmpl, crld)].Critical = true
		}, want: "cRLDistributionPoints must not be critical"},
		{name: "AUTH with a subjectAltName", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			r := signRequest()
			v := marshalSAN(r.Name, r.DateOfBirth, r.Sex, r.Address, r.NameMap, r.AddressMap)
			tmpl.ExtraExtensions = slices.Insert(tmpl.ExtraExtensions, 2, pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: v})
		}, want: "AUTH certificate has a subjectAltName: no personal data anywhere (R-P3)"},
		{name: "AUTH with a locality", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			raw, err := x509enc.DN{{Type: "C", Value: "JP"}, {Type: "L", Value: "Tokyo-to"}, {Type: "CN", Value: authRequest().SubjectCN}}.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			tmpl.RawSubject = raw
		}, want: "AUTH subject has C, L, CN; nothing but C and CN (R-P3)"},
		{name: "SIGN subject with merged L values", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.RawSubject = nil
			tmpl.Subject = pkix.Name{Country: []string{"JP"}, Locality: []string{"Tokyo-to", "Kiyose-shi"}, CommonName: signRequest().SubjectCN}
		}, want: "subject has a multi-valued RDN"},
		{name: "name map of the wrong length", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			r := signRequest()
			tmpl.ExtraExtensions[extIndex(tmpl, san)].Value = marshalSAN(r.Name, r.DateOfBirth, r.Sex, r.Address, "0100", r.AddressMap)
		}, want: "NameMap has 4 digits for the 5 characters of Name"},
		{name: "request map of the wrong length", req: signRequest, checkReq: func(r *profile.Request) { r.NameMap = "010000" },
			want: "Request.NameMap: 6 digits for the 5 characters of Name", wantErr: profile.ErrInvalidRequest},
		{name: "otherNames out of order", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			r := signRequest()
			tmpl.ExtraExtensions[extIndex(tmpl, san)].Value = marshalSAN(r.Name, r.Sex, r.DateOfBirth, r.Address, r.NameMap, r.AddressMap)
		}, want: "subjectAltName: DateOfBirth (1.2.392.200149.8.5.5.4) differs from the request"},
		{name: "otherName value IMPLICIT", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1})
					b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(testName)) })
				})
			})
			tmpl.ExtraExtensions[extIndex(tmpl, san)].Value = b.BytesOrPanic()
		}, want: "otherName 1.2.392.200149.8.5.5.1: value is not [0] EXPLICIT UTF8String"},
		{name: "wrong AKI", req: signRequest, issuer: func(iss *x509.Certificate) *x509.Certificate {
			other := *iss
			other.SubjectKeyId = []byte("another key generation")
			return &other
		}, want: "authorityKeyIdentifier: keyIdentifier is not the issuer's subjectKeyIdentifier"},
		{name: "basicConstraints", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.BasicConstraintsValid = true
		}, want: "unexpected basicConstraints extension"},
		{name: "extendedKeyUsage", req: authRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}, want: "unexpected extendedKeyUsage extension"},
		{name: "AUTH policy in a SIGN certificate", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			authTmpl, err := profile.Template(authIssuer, config(), authRequest())
			if err != nil {
				t.Fatal(err)
			}
			tmpl.ExtraExtensions[extIndex(tmpl, cp)] = authTmpl.ExtraExtensions[extIndex(authTmpl, cp)]
		}, want: "certificatePolicies: policy 1.2.392.200149.8.5.1.3.30, want 1.2.392.200149.8.5.1.1.20 for SIGN"},
		{name: "AUTH key usage in a SIGN certificate", req: signRequest, tamper: func(t *testing.T, tmpl *x509.Certificate) {
			authTmpl, err := profile.Template(authIssuer, config(), authRequest())
			if err != nil {
				t.Fatal(err)
			}
			tmpl.ExtraExtensions[extIndex(tmpl, ku)] = authTmpl.ExtraExtensions[extIndex(authTmpl, ku)]
		}, want: "keyUsage: digitalSignature, want digitalSignature + nonRepudiation"},
		{name: "another OCSP URL", req: authRequest, checkCfg: func(c *profile.Config) { c.OCSPURL = "http://ocsp2.shomei.example/" },
			want: `authorityInfoAccess: OCSP URL "http://ocsp.shomei.example/", want "http://ocsp2.shomei.example/"`},
		{name: "AIA the profile does not want", req: authRequest, checkCfg: func(c *profile.Config) { c.OCSPURL = "" },
			want: "unexpected authorityInfoAccess extension"},
		{name: "another CRL partition", req: signRequest, checkReq: func(r *profile.Request) {
			r.CRL.Name = profile.CRLDistributionPointName(sign, "東京都", "東久留米市", 0)
		}, want: "cRLDistributionPoints: directoryName is not C=JP, O=JPKI, OU=JPKI for digital signature, OU=CRL Distribution Points, OU=東京都, CN=東久留米市 CRLDP"},
		{name: "another issuerAltName", req: signRequest, checkCfg: func(c *profile.Config) {
			c.IssuerAltName = x509enc.DN{{Type: "C", Value: "JP"}, {Type: "O", Value: "Shomei"}}
		}, want: "issuerAltName: directoryName is not C=JP, O=Shomei"},
		{name: "another serial", req: authRequest, checkReq: func(r *profile.Request) { r.Serial = testenv.Serial() },
			want: "serial number differs from the request"},
		{name: "another holder key", req: authRequest, checkReq: func(r *profile.Request) { r.PublicKey = key("holder-sign").Public() },
			want: "public key is not the request's"},
		{name: "another notAfter", req: authRequest, checkReq: func(r *profile.Request) { r.NotAfter = r.NotAfter.AddDate(0, 0, 1) },
			want: "notAfter 2030-12-31 14:59:59 +0000 UTC, want 2031-01-01 14:59:59 +0000 UTC"},
		{name: "issued by another issuer name", req: authRequest, parent: func(iss *x509.Certificate) *x509.Certificate {
			other := *iss
			other.RawSubject = signIssuer.RawSubject
			return &other
		}, want: "issuer name is not the issuer certificate's subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req()
			issuer := signIssuer
			if req.Profile == auth {
				issuer = authIssuer
			}
			tmplIssuer := issuer
			if tc.issuer != nil {
				tmplIssuer = tc.issuer(issuer)
			}
			tmpl, err := profile.Template(tmplIssuer, config(), req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(t, tmpl)
			}
			parent := issuer
			if tc.parent != nil {
				parent = tc.parent(issuer)
			}
			cert, _ := create(t, tmpl, parent, key("ca"))

			cfg := config()
			if tc.checkCfg != nil {
				tc.checkCfg(&cfg)
			}
			if tc.checkReq != nil {
				tc.checkReq(&req)
			}
			err = profile.Check(cert, issuer, cfg, req)
			if err == nil {
				t.Fatal("Check passed")
			}
			wantErr := tc.wantErr
			if wantErr == nil {
				wantErr = profile.ErrMismatch
			}
			if !errors.Is(err, wantErr) {
				t.Errorf("error does not wrap %v: %v", wantErr, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%v\ndoes not contain\n%s", err, tc.want)
			}
			for _, personal := range []string{testName, testAddress, "19801231", "Kiyose-shi"} {
				if strings.Contains(err.Error(), personal) {
					t.Errorf("error repeats personal data: %v", err)
				}
			}
		})
	}
}

func TestLintCatches(t *testing.T) {
	issuer := newIssuer(t, auth, key("ca"))
	tmpl, err := profile.Template(issuer, config(), authRequest())
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtraExtensions[extIndex(tmpl, aki)].Critical = true
	// Go's parser refuses this certificate; zlint must say why.
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, tmpl.PublicKey, key("ca"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = profile.Lint(der)
	if !errors.Is(err, profile.ErrLint) || !strings.Contains(err.Error(), "e_ext_authority_key_identifier_critical") {
		t.Errorf("Lint: %v", err)
	}
	if _, err := profile.Lint([]byte("not a certificate")); !errors.Is(err, profile.ErrLint) {
		t.Errorf("Lint of garbage: %v", err)
	}
}
