package crl_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/profile"
	"github.com/shomei-pki/shomei/crl"
	"github.com/shomei-pki/shomei/internal/testenv"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

const (
	sign = storev1.Profile_PROFILE_SIGN
	auth = storev1.Profile_PROFILE_AUTH
)

// RFC 5280 CRLReason codes used by the tests.
const (
	unspecified          = 0
	keyCompromise        = 1
	affiliationChanged   = 3
	superseded           = 4
	cessationOfOperation = 5
)

var jst = time.FixedZone("JST", 9*60*60)

// The CRL's times, pinned. Revocations are recorded before thisUpdate.
var (
	thisUpdate = time.Date(2026, 2, 1, 10, 0, 0, 0, jst)
	nextUpdate = thisUpdate.Add(24 * time.Hour)
)

// keys are made once per test binary: RSA key generation is slow.
var keys = sync.OnceValue(func() map[string]crypto.Signer {
	k := map[string]crypto.Signer{}
	for _, name := range []string{"ca-rsa", "holder"} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		k[name] = key
	}
	for _, name := range []string{"ca-p256", "other-p256"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		k[name] = key
	}
	return k
})

func key(name string) crypto.Signer { return keys()[name] }

// fixture is one issuer key generation with two partitions of its profile.
type fixture struct {
	name    string
	profile storev1.Profile
	key     crypto.Signer
	issuer  *x509.Certificate
	// partition is the CRL under test; other is a neighbouring
	// municipality's partition of the same issuer; shard is shard 1 of
	// partition's municipality (R-R5).
	partition, other, shard crl.Partition
}

// fixtures are an RSA-2048 SIGN issuer and an ECDSA P-256 AUTH issuer.
var fixtures = sync.OnceValue(func() []*fixture {
	var out []*fixture
	for _, f := range []struct {
		name    string
		profile storev1.Profile
		key     string
		short   string
	}{
		{"rsa-2048", sign, "ca-rsa", "sign"},
		{"ecdsa-p256", auth, "ca-p256", "auth"},
	} {
		issuer, err := newIssuer(issuer.DefaultDN(f.profile), key(f.key))
		if err != nil {
			panic(err)
		}
		out = append(out, &fixture{
			name: f.name, profile: f.profile, key: key(f.key), issuer: issuer,
			partition: partition(f.profile, f.short, "13221", "清瀬市"),
			other:     partition(f.profile, f.short, "13222", "東久留米市"),
			shard:     shardPartition(f.profile, f.short, "13221", "清瀬市", 1),
		})
	}
	return out
})

// partition is the partition of a Tokyo municipality as ca/issue.go names
// it: <short>-g1-<code>, at <base>/crl/<name>.crl.
func partition(p storev1.Profile, short, code, municipality string) crl.Partition {
	name := fmt.Sprintf("%s-g1-%s", short, code)
	return crl.Partition{
		Name:              name,
		URL:               "http://shomei.example/crl/" + name + ".crl",
		DistributionPoint: profile.CRLDistributionPointName(p, "東京都", municipality, 0),
	}
}

// shardPartition is shard n ≥ 1 of partition(p, short, code,
// municipality), as ca/shard.go names it: <short>-g1-<code>-s<n>, its
// directoryName ending in CN=<municipality> CRLDP s<n>.
func shardPartition(p storev1.Profile, short, code, municipality string, n uint32) crl.Partition {
	name := fmt.Sprintf("%s-g1-%s-s%d", short, code, n)
	return crl.Partition{
		Name:              name,
		URL:               "http://shomei.example/crl/" + name + ".crl",
		DistributionPoint: profile.CRLDistributionPointName(p, "東京都", municipality, n),
	}
}

// newIssuer makes a self-signed issuer certificate like ca/issuer's:
// cA with path length 0, keyCertSign and cRLSign, and an RFC 5280 method 1
// subjectKeyIdentifier.
func newIssuer(name x509enc.DN, key crypto.Signer) (*x509.Certificate, error) {
	raw, err := name.Marshal()
	if err != nil {
		return nil, err
	}
	ski, err := x509enc.SubjectKeyIDOf(key.Public())
	if err != nil {
		return nil, err
	}
	return testenv.SelfSigned(testenv.IssuerTemplate(raw, ski), key)
}

const (
	holderName    = "渡邊　太郎"
	holderAddress = "東京都清瀬市中里五丁目８４２番地"
)

// issue makes a holder certificate of f's profile in partition p with
// ca/profile's Template: exactly what the CA issues.
func issue(t testing.TB, f *fixture, p crl.Partition) *x509.Certificate {
	t.Helper()
	req := profile.Request{
		Profile:   f.profile,
		Serial:    testenv.Serial(),
		NotBefore: time.Date(2026, 1, 10, 10, 30, 0, 0, jst),
		NotAfter:  time.Date(2030, 12, 31, 23, 59, 59, 0, jst),
		PublicKey: key("holder").Public(),
		SubjectCN: "13221HOLDER0123456789ABCDEF",
		CRL:       profile.CRLDistributionPoint{Name: p.DistributionPoint, URL: p.URL},
	}
	if f.profile == sign {
		req.PrefectureRomaji, req.MunicipalityRomaji = "Tokyo-to", "Kiyose-shi"
		req.Name, req.NameMap = holderName, "01000"
		req.DateOfBirth, req.Sex = "319801231", "1"
		req.Address, req.AddressMap = holderAddress, strings.Repeat("0", len([]rune(holderAddress)))
	}
	cfg := profile.Config{OCSPURL: "http://shomei.example/ocsp", CPSURL: "https://shomei.example/cps/"}
	tmpl, err := profile.Template(f.issuer, cfg, req)
	if err != nil {
		t.Fatalf("profile.Template: %v", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.issuer, tmpl.PublicKey, f.key)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := profile.Check(cert, f.issuer, cfg, req); err != nil {
		t.Fatalf("profile.Check: %v", err)
	}
	return cert
}

// revocations are the entries of the sample CRL, deliberately out of
// order, with sub-second times that the CRL rounds down: one per reason
// R-R1 uses, and one unspecified without an invalidityDate.
func revocations(serials ...*big.Int) []crl.Entry {
	at := func(day, hour int) time.Time { return time.Date(2026, 1, day, hour, 15, 30, 123456789, jst) }
	reasons := []struct {
		reason      int
		invalidity  time.Time
		revokedDays int
	}{
		{affiliationChanged, time.Date(2026, 1, 20, 0, 0, 0, 0, jst), 21},
		{keyCompromise, time.Date(2026, 1, 25, 22, 40, 0, 0, jst), 26},
		{superseded, time.Date(2026, 1, 28, 9, 0, 0, 0, jst), 28},
		{cessationOfOperation, time.Date(2026, 1, 29, 0, 0, 0, 0, jst), 30},
		{unspecified, time.Time{}, 31},
	}
	out := make([]crl.Entry, len(serials))
	for i, sn := range serials {
		r := reasons[i%len(reasons)]
		out[i] = crl.Entry{Serial: sn, RevokedAt: at(r.revokedDays, 9+i%5), Reason: r.reason, InvalidityDate: r.invalidity}
	}
	return out
}

// request is the CRL request of f's partition with entries.
func request(f *fixture, entries []crl.Entry) crl.Request {
	return crl.Request{
		Partition:  f.partition,
		Issuer:     f.issuer,
		Signer:     f.key,
		Number:     big.NewInt(42),
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
		Entries:    entries,
	}
}

// sample is a CRL of f's partition revoking the given certificates and
// five more serials, built by Build: with no certificates, one entry per
// reason of revocations, in that order.
func sample(t testing.TB, f *fixture, revoked ...*x509.Certificate) (crl.Request, []byte) {
	t.Helper()
	var serials []*big.Int
	for _, c := range revoked {
		serials = append(serials, c.SerialNumber)
	}
	serials = append(serials, testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial(), testenv.Serial())
	req := request(f, revocations(serials...))
	der, err := crl.Build(req)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return req, der
}

// distributionPointFullName returns the fullName GeneralNames (the
// contents of the [0] IMPLICIT tag) of the first distributionPoint of a
// cRLDistributionPoints value (crlDP true) or of an
// issuingDistributionPoint value.
func distributionPointFullName(t testing.TB, value []byte, crlDP bool) []byte {
	t.Helper()
	in := cryptobyte.String(value)
	var seq, dpName, fullName cryptobyte.String
	ok := in.ReadASN1(&seq, cbasn1.SEQUENCE)
	if crlDP {
		ok = ok && seq.ReadASN1(&seq, cbasn1.SEQUENCE)
	}
	ok = ok && seq.ReadASN1(&dpName, cbasn1.Tag(0).ContextSpecific().Constructed()) &&
		dpName.ReadASN1(&fullName, cbasn1.Tag(0).ContextSpecific().Constructed())
	if !ok {
		t.Fatalf("no distributionPoint fullName in %x", value)
	}
	return fullName
}

// extension returns the value of the extension oid, and whether it is
// critical; it fails the test if there is not exactly one.
func extension(t testing.TB, exts []pkix.Extension, oid asn1.ObjectIdentifier) ([]byte, bool) {
	t.Helper()
	var found []pkix.Extension
	for _, e := range exts {
		if e.Id.Equal(oid) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d extensions %v, want 1", len(found), oid)
	}
	return found[0].Value, found[0].Critical
}

var (
	oidCRLDistributionPoints    = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidInvalidityDate           = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidReasonCode               = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidCRLNumber                = asn1.ObjectIdentifier{2, 5, 29, 20}
)

// tbsCertList is a TBSCertList to take apart and sign again, to make CRLs
// Build never makes.
type tbsCertList struct {
	Raw        asn1.RawContent
	Version    int
	Signature  pkix.AlgorithmIdentifier
	Issuer     asn1.RawValue
	ThisUpdate asn1.RawValue
	NextUpdate asn1.RawValue             `asn1:"optional"`
	Revoked    []pkix.RevokedCertificate `asn1:"optional"`
	Extensions []pkix.Extension          `asn1:"tag:0,optional,explicit"`
}

type certificateList struct {
	TBS       asn1.RawValue
	Algorithm pkix.AlgorithmIdentifier
	Signature asn1.BitString
}

// hashes are the digests of the signature algorithms tamper signs with.
var hashes = map[string]crypto.Hash{
	"1.2.840.113549.1.1.11": crypto.SHA256, // sha256WithRSAEncryption
	"1.2.840.113549.1.1.12": crypto.SHA384, // sha384WithRSAEncryption
	"1.2.840.10045.4.3.2":   crypto.SHA256, // ecdsa-with-SHA256
	"1.2.840.10045.4.3.3":   crypto.SHA384, // ecdsa-with-SHA384
}

// tamper decodes the CRL der, lets edit change its TBSCertList, and signs
// the result with signer using the algorithm in the TBSCertList's
// signature field, which it also writes as the outer algorithm.
func tamper(t testing.TB, der []byte, signer crypto.Signer, edit func(*tbsCertList)) []byte {
	t.Helper()
	var list certificateList
	if rest, err := asn1.Unmarshal(der, &list); err != nil || len(rest) > 0 {
		t.Fatalf("not a CRL: %v", err)
	}
	var tbs tbsCertList
	if rest, err := asn1.Unmarshal(list.TBS.FullBytes, &tbs); err != nil || len(rest) > 0 {
		t.Fatalf("not a TBSCertList: %v", err)
	}
	edit(&tbs)
	tbs.Raw = nil
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := hashes[tbs.Signature.Algorithm.String()]
	if !ok {
		t.Fatalf("no hash for %v", tbs.Signature.Algorithm)
	}
	d := h.New()
	d.Write(tbsDER)
	sig, err := signer.Sign(rand.Reader, d.Sum(nil), h)
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(certificateList{
		TBS:       asn1.RawValue{FullBytes: tbsDER},
		Algorithm: tbs.Signature,
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
