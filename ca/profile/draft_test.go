package profile_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// reference is the certificate made the way the CA used to make them,
// kept as the reference: Template, then x509.CreateCertificate signing
// with the issuer's key.
func reference(t testing.TB, issuer *x509.Certificate, signer crypto.Signer, cfg profile.Config, req profile.Request) *x509.Certificate {
	t.Helper()
	tmpl, err := profile.Template(issuer, cfg, req)
	if err != nil {
		t.Fatalf("Template: %v", err)
	}
	cert, _ := create(t, tmpl, issuer, signer)
	return cert
}

// Characters of generated names and addresses: kana, level 1 and 2 kanji,
// JIS X 0212 kanji, full-width digits and signs, and ASCII, so that both
// string types and multi-byte lengths occur.
var (
	kanji   = []rune("渡邊太郎花子山田高橋佐藤鈴木伊藤中里五丁目番地号清瀬市東京都大阪府北海道札幌区町村丘森林川﨑髙𠮷丂丄丅")
	kana    = []rune("あいうえおかきくけこさしすせそアイウエオカキクケコーヶ")
	signs   = []rune("０１２３４５６７８９－‐・（）　")
	ascii   = []rune("ABCxyz0129 '()+,-./:=?*&#")
	romaji  = []string{"Tokyo-to", "Kiyose-shi", "Osaka-fu", "Hokkaido", "Sapporo-shi Chuo-ku", "Minami Alps-shi"}
	munis   = [][2]string{{"東京都", "清瀬市"}, {"大阪府", "大阪市"}, {"北海道", "札幌市"}, {"Tokyo-to", "Kiyose-shi"}, {"A&B", "C*D"}, {"長野県", "南佐久郡南牧村"}}
	eraDays = []time.Time{ // first day of Meiji, Taisho, Showa, Heisei, Reiwa
		time.Date(1868, 1, 25, 0, 0, 0, 0, time.UTC), time.Date(1912, 7, 30, 0, 0, 0, 0, time.UTC),
		time.Date(1926, 12, 25, 0, 0, 0, 0, time.UTC), time.Date(1989, 1, 8, 0, 0, 0, 0, time.UTC),
		time.Date(2019, 5, 1, 0, 0, 0, 0, time.UTC),
	}
)

func randomText(rng *mrand.Rand, n int, alphabets ...[]rune) string {
	var b strings.Builder
	for range n {
		a := alphabets[rng.IntN(len(alphabets))]
		b.WriteRune(a[rng.IntN(len(a))])
	}
	return b.String()
}

func randomMap(rng *mrand.Rand, text string) string {
	var b strings.Builder
	for range []rune(text) {
		b.WriteByte("0000001"[rng.IntN(7)])
	}
	return b.String()
}

// eraCode is R-P2's era-coded date of birth.
func eraCode(d time.Time) string {
	era := 1
	for i, start := range eraDays {
		if !d.Before(start) {
			era = i + 1
		}
	}
	return fmt.Sprintf("%d%s", era, d.Format("20060102"))
}

// randomRequest makes a valid request of profile p for a generated holder.
func randomRequest(rng *mrand.Rand, p storev1.Profile, holderKeys []crypto.PublicKey) profile.Request {
	// notBefore up to 2049, notAfter at 23:59:59 JST up to 20 years later,
	// so that both UTCTime and GeneralizedTime (2050 on) are written.
	notBefore := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(30 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	if rng.IntN(3) == 0 {
		notBefore = notBefore.In(jst)
	}
	end := notBefore.In(jst).AddDate(0, 0, 1+rng.IntN(20*365))
	notAfter := time.Date(end.Year(), end.Month(), end.Day(), 23, 59, 59, 0, jst)
	bits := 64 + rng.IntN(96)
	raw := make([]byte, 20)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	sn := new(big.Int).SetBytes(raw)
	sn.Rsh(sn, uint(160-bits)).SetBit(sn, bits-1, 1)
	m := munis[rng.IntN(len(munis))]
	req := profile.Request{
		Profile:   p,
		Serial:    sn,
		NotBefore: notBefore,
		NotAfter:  notAfter,
		PublicKey: holderKeys[rng.IntN(len(holderKeys))],
		SubjectCN: fmt.Sprintf("%05d%s", rng.IntN(100000), randomText(rng, 1+rng.IntN(40), []rune("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"))),
		CRL: profile.CRLDistributionPoint{
			Name: profile.CRLDistributionPointName(p, m[0], m[1], 0),
			URL:  fmt.Sprintf("http://crl.shomei.example/%s-g%d-%05d.crl", p, 1+rng.IntN(3), rng.IntN(100000)),
		},
	}
	if p == storev1.Profile_PROFILE_AUTH {
		return req
	}
	req.PrefectureRomaji = romaji[rng.IntN(len(romaji))]
	req.MunicipalityRomaji = romaji[rng.IntN(len(romaji))]
	req.Name = randomText(rng, 1+rng.IntN(12), kanji, kana) + "\u3000" + randomText(rng, 1+rng.IntN(12), kanji, kana)
	if rng.IntN(10) == 0 { // long names
		req.Name = randomText(rng, 60, kanji, kana) + "\u3000" + randomText(rng, 60, kanji, kana)
	}
	req.NameMap = randomMap(rng, req.Name)
	req.Address = m[0] + randomText(rng, rng.IntN(200-len([]rune(m[0]))+1), kanji, kana, signs, ascii)
	req.AddressMap = randomMap(rng, req.Address)
	birthJST := notBefore.In(jst)
	birthday := time.Date(birthJST.Year(), birthJST.Month(), birthJST.Day(), 0, 0, 0, 0, time.UTC)
	dob := eraDays[0].AddDate(0, 0, rng.IntN(int(birthday.Sub(eraDays[0]).Hours()/24)+1))
	req.DateOfBirth = eraCode(dob)
	req.Sex = string("123"[rng.IntN(3)])
	return req
}

// TestDraftIsCreateCertificates proves that NewDraft encodes, byte for
// byte, the TBSCertificate that Template and
// x509.CreateCertificate produce with the issuer's key: for generated
// holders of both profiles (substitution maps, every era, names and
// addresses up to their limits, dates either side of 2050), RSA and ECDSA
// issuer and holder keys, with and without OCSP and a configured
// issuerAltName.
func TestDraftIsCreateCertificates(t *testing.T) {
	holderKeys := []crypto.PublicKey{key("holder-sign").Public(), key("holder-auth").Public(), key("holder-p256").Public()}
	noOCSP := config()
	noOCSP.OCSPURL = ""
	customIAN := config()
	customIAN.IssuerAltName = x509enc.DN{{Type: "C", Value: "JP"}, {Type: "O", Value: "Shomei & Co*"}, {Type: "OU", Value: "公的個人認証サービス"}}
	configs := []profile.Config{config(), noOCSP, customIAN}

	rng := mrand.New(mrand.NewPCG(2026, 1))
	n := 400
	if testing.Short() {
		n = 60
	}
	for _, p := range []storev1.Profile{sign, auth} {
		for _, ca := range []string{"ca", "ca-p256", "ca-p384"} {
			issuer := newIssuer(t, p, key(ca))
			t.Run(fmt.Sprintf("%s/%s", p, ca), func(t *testing.T) {
				for i := range n {
					req := randomRequest(rng, p, holderKeys)
					cfg := configs[i%len(configs)]
					d, err := profile.NewDraft(issuer, cfg, req)
					if err != nil {
						t.Fatalf("holder %d: NewDraft: %v", i, err)
					}
					ref := reference(t, issuer, key(ca), cfg, req)
					if !bytes.Equal(d.TBS, ref.RawTBSCertificate) {
						t.Fatalf("holder %d: the draft's TBS differs from CreateCertificate's\n got %x\nwant %x", i, d.TBS, ref.RawTBSCertificate)
					}
					if err := d.Check(ref); err != nil {
						t.Fatalf("holder %d: Check: %v", i, err)
					}
				}
			})
		}
	}
}

// TestDraftRefuses: the same refusals as Template.
func TestDraftRefuses(t *testing.T) {
	issuer := newIssuer(t, sign, key("ca"))
	req := signRequest()
	req.NameMap = "0"
	req.SubjectCN = ""
	_, tErr := profile.Template(issuer, config(), req)
	_, err := profile.NewDraft(issuer, config(), req)
	if !errors.Is(err, profile.ErrInvalidRequest) || tErr == nil || err.Error() != tErr.Error() {
		t.Errorf("NewDraft: %v\nTemplate: %v", err, tErr)
	}
	if _, err := profile.NewDraft(nil, config(), signRequest()); !errors.Is(err, profile.ErrInvalidRequest) {
		t.Errorf("no issuer: %v", err)
	}
}

// TestLintCopy is the CA's cycle: the certificate with a placeholder
// signature parses, passes Check and Lint, and zlint gives every one of its
// lints the same result as on the certificate the issuer key signs.
func TestLintCopy(t *testing.T) {
	registry, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC5280}})
	if err != nil {
		t.Fatal(err)
	}
	results := func(t *testing.T, der []byte) map[string]lint.LintStatus {
		t.Helper()
		c, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]lint.LintStatus{}
		for name, r := range zlint.LintCertificateEx(c, registry).Results {
			out[name] = r.Status
		}
		return out
	}
	for _, ca := range []string{"ca", "ca-p256", "ca-p384"} {
		for _, req := range []profile.Request{signRequest(), authRequest()} {
			t.Run(req.Profile.String()+"/"+ca, func(t *testing.T) {
				issuer := newIssuer(t, req.Profile, key(ca))
				d, err := profile.NewDraft(issuer, config(), req)
				if err != nil {
					t.Fatal(err)
				}
				tbs := d.TBS
				lintDER, err := d.LintCopy()
				if err != nil {
					t.Fatal(err)
				}
				lintCert, err := x509.ParseCertificate(lintDER)
				if err != nil {
					t.Fatalf("the lint copy does not parse: %v", err)
				}
				if err := profile.Check(lintCert, issuer, config(), req); err != nil {
					t.Fatalf("Check of the lint copy: %v", err)
				}
				if err := d.Check(lintCert); err != nil {
					t.Fatalf("the draft's Check of the lint copy: %v", err)
				}
				if _, err := profile.Lint(lintDER); err != nil {
					t.Fatalf("Lint of the lint copy: %v", err)
				}
				if lintCert.CheckSignatureFrom(issuer) == nil {
					t.Fatal("the placeholder signature verifies under the issuer key")
				}
				if !bytes.Equal(lintCert.RawTBSCertificate, tbs) {
					t.Fatal("the lint copy's TBS is not the one to sign")
				}

				tmpl, err := profile.Template(issuer, config(), req)
				if err != nil {
					t.Fatal(err)
				}
				real, realDER := create(t, tmpl, issuer, key(ca))
				if err := real.CheckSignatureFrom(issuer); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(real.RawTBSCertificate, tbs) {
					t.Fatal("the signed certificate's TBS is not the linted one")
				}
				if len(lintCert.Signature) > len(real.Signature)+2 || len(lintCert.Signature)+2 < len(real.Signature) {
					t.Errorf("placeholder signature of %d bytes for a %d-byte signature", len(lintCert.Signature), len(real.Signature))
				}
				lintResults, realResults := results(t, lintDER), results(t, realDER)
				if len(realResults) < 100 {
					t.Fatalf("%d lints ran", len(realResults))
				}
				for name, want := range realResults {
					if got := lintResults[name]; got != want {
						t.Errorf("%s: %v on the lint copy, %v on the signed certificate", name, got, want)
					}
				}
			})
		}
	}
}
