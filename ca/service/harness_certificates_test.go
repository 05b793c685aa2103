package service_test

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
)

// Certificates: what every granted certificate must hold, by profile
// (R-P1..R-P3).

// checkCertificate checks one certificate of a response and returns it
// parsed.
func (h *harness) checkCertificate(t *testing.T, c *cav1.Certificate, now time.Time) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Der)
	if err != nil {
		t.Fatalf("certificate %s does not parse: %v", c.Serial, err)
	}
	if block, _ := pem.Decode([]byte(c.Pem)); block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, c.Der) {
		t.Errorf("certificate %s: PEM is not its DER", c.Serial)
	}
	if c.Status != cav1.Status_STATUS_VALID {
		t.Errorf("certificate %s is %v, want VALID", c.Serial, c.Status)
	}
	if cert.SerialNumber.Sign() <= 0 || len(cert.SerialNumber.Bytes()) > 20 || cert.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %x is not a positive number of 64 bits to 20 octets (R-P1)", cert.SerialNumber)
	}
	if c.Serial != cert.SerialNumber.Text(16) {
		t.Errorf("serial %s, the certificate has %s", c.Serial, cert.SerialNumber.Text(16))
	}
	want := endOfDay(t, c.ExpiryDate)
	if !cert.NotAfter.Equal(want) || c.NotAfter != want.Format(time.RFC3339) {
		t.Errorf("certificate %s expires %s: notAfter %v (response %s), want %v (R-P1)", c.Serial, c.ExpiryDate, cert.NotAfter, c.NotAfter, want)
	}
	if c.IssuerGeneration != 1 {
		t.Errorf("certificate %s: issuer generation %d, want 1", c.Serial, c.IssuerGeneration)
	}
	iss := h.issuers[c.Profile]
	roots := x509.NewCertPool()
	roots.AddCert(iss)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("certificate %s does not verify against its issuer: %v", c.Serial, err)
	}
	if cert.NotAfter.After(iss.NotAfter) {
		t.Errorf("certificate %s outlives its issuer (R-V7)", c.Serial)
	}
	return cert
}

// Object identifiers of the SIGN subjectAltName's otherNames (R-P2).
var (
	oidName       = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 1}
	oidNameMap    = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 2}
	oidSex        = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 3}
	oidBirth      = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 4}
	oidAddress    = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 5}
	oidAddressMap = asn1.ObjectIdentifier{1, 2, 392, 200149, 8, 5, 5, 6}

	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// otherName is one entry of a subjectAltName.
type otherName struct {
	oid   asn1.ObjectIdentifier
	value string
}

// otherNames reads a certificate's subjectAltName, which must hold
// otherNames only, each value [0] EXPLICIT UTF8String (R-P2).
func otherNames(t testing.TB, cert *x509.Certificate) []otherName {
	t.Helper()
	var out []otherName
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) || !in.Empty() {
			t.Fatal("subjectAltName is not a SEQUENCE")
		}
		for !names.Empty() {
			var name, value, text cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !names.ReadASN1(&name, cbasn1.Tag(0).ContextSpecific().Constructed()) {
				t.Fatal("subjectAltName holds a GeneralName that is not an otherName")
			}
			if !name.ReadASN1ObjectIdentifier(&oid) ||
				!name.ReadASN1(&value, cbasn1.Tag(0).ContextSpecific().Constructed()) || !name.Empty() ||
				!value.ReadASN1(&text, cbasn1.UTF8String) || !value.Empty() {
				t.Fatal("otherName is not type-id, [0] EXPLICIT UTF8String")
			}
			out = append(out, otherName{oid, string(text)})
		}
	}
	return out
}

// checkSign checks the personal data of a SIGN certificate against the
// request, where no character needed a substitute; tests of substitution
// look at the values themselves.
func (h *harness) checkSign(t *testing.T, cert *x509.Certificate, req *cav1.IssueRequest) {
	t.Helper()
	names := otherNames(t, cert)
	var oids []string
	for _, n := range names {
		oids = append(oids, n.oid.String())
	}
	wantOIDs := []string{oidName.String(), oidBirth.String(), oidSex.String(), oidAddress.String(), oidNameMap.String(), oidAddressMap.String()}
	if !slices.Equal(oids, wantOIDs) {
		t.Fatalf("SIGN subjectAltName otherNames %v, want %v (R-P2)", oids, wantOIDs)
	}
	if len(req.NameSubstitutions) > 0 || len(req.AddressSubstitutions) > 0 {
		return
	}
	hol := req.Holder
	name := hol.Surname + "\u3000" + hol.GivenName
	if got := names[0].value; got != name {
		t.Errorf("name %q, want %q", got, name)
	}
	if got, want := names[4].value, strings.Repeat("0", len([]rune(name))); got != want {
		t.Errorf("name substitution map %q, want %q", got, want)
	}
	if got := names[3].value; got != hol.Address {
		t.Errorf("address %q, want %q", got, hol.Address)
	}
	if got, want := names[5].value, strings.Repeat("0", len([]rune(hol.Address))); got != want {
		t.Errorf("address substitution map %q, want %q", got, want)
	}
	if got, want := names[2].value, fmt.Sprint(int32(hol.Sex)); got != want {
		t.Errorf("sex %q, want %q", got, want)
	}
	if got, want := names[1].value, eraDate(hol.DateOfBirth); got != want {
		t.Errorf("date of birth %q, want %q", got, want)
	}
}

// eraDate is R-P2's date of birth: the era digit, then YYYYMMDD.
func eraDate(date string) string {
	era := "5" // Reiwa, from 2019-05-01
	switch {
	case date < "1912-07-30":
		era = "1"
	case date < "1926-12-25":
		era = "2"
	case date < "1989-01-08":
		era = "3"
	case date < "2019-05-01":
		era = "4"
	}
	return era + strings.ReplaceAll(date, "-", "")
}

// checkAuth checks that an AUTH certificate says nothing about the person
// (R-P3): subject C and CN only, no subjectAltName, none of the holder's
// data anywhere in it.
func checkAuth(t *testing.T, cert *x509.Certificate, hol *cav1.Holder) {
	t.Helper()
	if n := cert.Subject.Names; len(n) != 2 || len(cert.Subject.Country) != 1 || cert.Subject.CommonName == "" {
		t.Errorf("AUTH subject %v, want C and CN only (R-P3)", cert.Subject)
	}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			t.Error("AUTH certificate has a subjectAltName (R-P3)")
		}
	}
	for _, s := range []string{hol.Surname, hol.GivenName, hol.Address, hol.HolderId, strings.ReplaceAll(hol.DateOfBirth, "-", "")} {
		if s != "" && bytes.Contains(cert.Raw, []byte(s)) {
			t.Errorf("AUTH certificate contains the holder's %q (R-P3)", s)
		}
	}
}
