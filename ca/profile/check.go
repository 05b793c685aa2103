package profile

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/shomei-pki/shomei/internal/x509enc"
)

// ErrMismatch is wrapped by every difference Check finds between a
// certificate and its profile.
var ErrMismatch = errors.New("profile: certificate does not match its profile")

// MismatchError is one difference between a certificate and its profile.
// Like FieldError it never quotes personal data.
type MismatchError struct {
	Problem string
}

func (e *MismatchError) Error() string { return "profile: certificate: " + e.Problem }

// Is makes every MismatchError match ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Check verifies that cert is exactly the certificate that Template
// describes for req from issuer: version 3 without unique identifiers, the
// serial, signature algorithm, validity, issuer name (the bytes of
// issuer.RawSubject), subject (one attribute per RDN: SIGN C, L, L, CN;
// AUTH C, CN) and public key of req, and R-P1's extensions in R-P1's order
// with R-P1's criticality and nothing else. Each extension is decoded and
// compared field by field, so the error says what is wrong, and then
// compared byte for byte with the profile's own encoding.
//
// Check does not verify the signature: the lint copy has a placeholder
// (Draft.LintCopy), or a throwaway key's signature. The caller checks the
// real certificate's signature, e.g. with cert.CheckSignatureFrom(issuer).
//
// A bad cfg or req gives the errors of Template (ErrInvalidRequest); each
// difference is a *MismatchError wrapping ErrMismatch; all are joined.
func Check(cert *x509.Certificate, issuer *x509.Certificate, cfg Config, req Request) error {
	if cert == nil {
		return &MismatchError{"no certificate"}
	}
	if len(cfg.IssuerAltName) == 0 {
		cfg.IssuerAltName = DefaultIssuerAltName()
	}
	want, err := build(issuer, cfg, req)
	if err != nil {
		return err
	}
	return check(cert, issuer, cfg, req, want)
}

// check is Check with the profile's encoding of req already built.
func check(cert, issuer *x509.Certificate, cfg Config, req Request, want *tbs) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, &MismatchError{fmt.Sprintf(format, args...)})
	}

	if cert.Version != 3 {
		fail("version %d, want 3", cert.Version)
	}
	if msg := tbsShape(cert.RawTBSCertificate); msg != "" {
		fail("%s", msg)
	}
	if cert.SerialNumber == nil || cert.SerialNumber.Cmp(req.Serial) != 0 {
		fail("serial number differs from the request")
	}
	if cert.SignatureAlgorithm != want.sigAlg {
		fail("signature algorithm %v, want %v for the issuer's key (R-P1)", cert.SignatureAlgorithm, want.sigAlg)
	}
	if !bytes.Equal(cert.RawIssuer, issuer.RawSubject) {
		fail("issuer name is not the issuer certificate's subject")
	}
	if !cert.NotBefore.Equal(req.NotBefore) {
		fail("notBefore %s, want %s", cert.NotBefore.UTC(), req.NotBefore.UTC())
	}
	if !cert.NotAfter.Equal(req.NotAfter) {
		fail("notAfter %s, want %s", cert.NotAfter.UTC(), req.NotAfter.UTC())
	}
	if !bytes.Equal(cert.RawSubject, want.subject) {
		fail("%s", subjectProblem(cert.RawSubject, want.spec))
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, want.spki) {
		fail("public key is not the request's")
	}
	checkExtensions(cert, issuer, cfg, req, want, fail)
	return errors.Join(errs...)
}

// tbsShape reports a TBSCertificate that has issuerUniqueID or
// subjectUniqueID, or no extensions, or "".
func tbsShape(raw []byte) string {
	in := cryptobyte.String(raw)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !in.Empty() ||
		!tbs.SkipASN1(cbasn1.Tag(0).ContextSpecific().Constructed()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.SkipASN1(cbasn1.SEQUENCE) { // subjectPublicKeyInfo
		return "malformed TBSCertificate"
	}
	if tbs.PeekASN1Tag(cbasn1.Tag(1).ContextSpecific()) || tbs.PeekASN1Tag(cbasn1.Tag(2).ContextSpecific()) {
		return "has issuerUniqueID or subjectUniqueID"
	}
	if !tbs.SkipASN1(cbasn1.Tag(3).ContextSpecific().Constructed()) || !tbs.Empty() {
		return "TBSCertificate does not end with the extensions"
	}
	return ""
}

// subjectProblem says how a subject that differs from the profile's is
// wrong, without its values.
func subjectProblem(raw []byte, s spec) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &seq); err != nil || len(rest) > 0 {
		return "subject is not a DER Name"
	}
	var types []string
	for _, rdn := range seq {
		if len(rdn) != 1 {
			return "subject has a multi-valued RDN; one attribute per RDN"
		}
		t := x509enc.AttributeName(rdn[0].Type)
		if t == "" {
			t = rdn[0].Type.String()
		}
		types = append(types, t)
	}
	got, want := strings.Join(types, ", "), "C, L, L, CN"
	if !s.personal {
		want = "C, CN"
	}
	switch {
	case got == want:
		return "subject values or string types differ from the request"
	case !s.personal:
		return fmt.Sprintf("AUTH subject has %s; nothing but C and CN (R-P3)", got)
	}
	return fmt.Sprintf("subject has %s, want %s (R-P2)", got, want)
}

// checkExtensions compares cert's extensions with the profile's.
func checkExtensions(cert, issuer *x509.Certificate, cfg Config, req Request, want *tbs, fail func(string, ...any)) {
	names := func(exts []pkix.Extension) string {
		n := make([]string, len(exts))
		for i, e := range exts {
			n[i] = extensionName(e.Id)
			if e.Critical {
				n[i] += " (critical)"
			}
		}
		return strings.Join(n, ", ")
	}
	sameIDs := slices.EqualFunc(cert.Extensions, want.extensions, func(a, b pkix.Extension) bool { return a.Id.Equal(b.Id) })
	if !sameIDs {
		fail("extensions are [%s], want [%s] in this order (R-P1)", names(cert.Extensions), names(want.extensions))
	}
	for _, e := range cert.Extensions {
		if slices.ContainsFunc(want.extensions, func(w pkix.Extension) bool { return w.Id.Equal(e.Id) }) {
			continue
		}
		if e.Id.Equal(oidExtSubjectAltName) && !want.spec.personal {
			fail("AUTH certificate has a subjectAltName: no personal data anywhere (R-P3)")
		} else {
			fail("unexpected %s extension", extensionName(e.Id))
		}
	}

	checkValue := func(oid asn1.ObjectIdentifier, v []byte) []string {
		switch {
		case oid.Equal(oidExtAuthorityKeyID):
			return checkAuthorityKeyID(v, issuer.SubjectKeyId)
		case oid.Equal(oidExtKeyUsage):
			if cert.KeyUsage != want.spec.keyUsage {
				return []string{fmt.Sprintf("%s, want %s", keyUsageNames(cert.KeyUsage), keyUsageNames(want.spec.keyUsage))}
			}
		case oid.Equal(oidExtSubjectAltName):
			return checkSubjectAltName(v, req)
		case oid.Equal(oidExtIssuerAltName):
			return checkIssuerAltName(v, cfg, want.issuerAltName)
		case oid.Equal(oidExtCRLDistribution):
			return checkCRLDistributionPoints(v, req.CRL, want.crlName)
		case oid.Equal(oidExtCertPolicies):
			return checkCertificatePolicies(v, want.spec, cfg.CPSURL)
		case oid.Equal(oidExtSubjectKeyID):
			if ski, err := x509enc.SubjectKeyID(cert.RawSubjectPublicKeyInfo); err != nil || !bytes.Equal(cert.SubjectKeyId, ski) {
				return []string{"not the SHA-1 of the subjectPublicKey (RFC 5280 §4.2.1.2 method 1)"}
			}
		case oid.Equal(oidExtAuthorityInfo):
			return checkAuthorityInfoAccess(v, cfg.OCSPURL)
		default:
			return []string{"no check for it"}
		}
		return nil
	}
	for _, w := range want.extensions {
		name := extensionName(w.Id)
		i := slices.IndexFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(w.Id) })
		if i < 0 {
			fail("%s missing", name)
			continue
		}
		got := cert.Extensions[i]
		switch {
		case w.Critical && !got.Critical:
			fail("%s must be critical (R-P1)", name)
		case !w.Critical && got.Critical:
			fail("%s must not be critical (R-P1)", name)
		}
		problems := checkValue(w.Id, got.Value)
		for _, p := range problems {
			fail("%s: %s", name, p)
		}
		if len(problems) == 0 && !bytes.Equal(got.Value, w.Value) {
			fail("%s: not the profile's DER encoding", name)
		}
	}
}

func keyUsageNames(ku x509.KeyUsage) string {
	var n []string
	for i, name := range []string{"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"} {
		if ku&(1<<i) != 0 {
			n = append(n, name)
		}
	}
	if len(n) == 0 {
		return "no bits"
	}
	return strings.Join(n, " + ")
}

// generalName is one undecoded GeneralName.
type generalName struct {
	tag  cbasn1.Tag
	body cryptobyte.String
}

// readGeneralNames reads a whole SEQUENCE OF GeneralName from its contents.
func readGeneralNames(in cryptobyte.String) ([]generalName, bool) {
	var out []generalName
	for !in.Empty() {
		var gn generalName
		if !in.ReadAnyASN1(&gn.body, &gn.tag) {
			return nil, false
		}
		out = append(out, gn)
	}
	return out, len(out) > 0
}

// readSequence returns the contents of the SEQUENCE that is all of der.
func readSequence(der []byte) (cryptobyte.String, bool) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	ok := in.ReadASN1(&seq, cbasn1.SEQUENCE) && in.Empty()
	return seq, ok
}

func checkAuthorityKeyID(v, issuerKeyID []byte) []string {
	kid, only, ok := x509enc.ParseAuthorityKeyID(v)
	if !ok {
		return []string{"no keyIdentifier"}
	}
	if !only {
		return []string{"has authorityCertIssuer or authorityCertSerialNumber; keyIdentifier only"}
	}
	if !bytes.Equal(kid, issuerKeyID) {
		return []string{"keyIdentifier is not the issuer's subjectKeyIdentifier"}
	}
	return nil
}

// checkSubjectAltName checks the SIGN subjectAltName (R-P2). Its messages
// name fields, never values.
func checkSubjectAltName(v []byte, req Request) []string {
	seq, ok := readSequence(v)
	names, ok2 := readGeneralNames(seq)
	if !ok || !ok2 {
		return []string{"malformed GeneralNames"}
	}
	var problems []string
	var oids []asn1.ObjectIdentifier
	// values[i] is the value of sanOrder[i]'s otherName, if has[i].
	values := make([][]byte, len(sanOrder))
	has := make([]bool, len(sanOrder))
	for i, gn := range names {
		if gn.tag != tagOtherName {
			problems = append(problems, fmt.Sprintf("entry %d is not an otherName; otherNames only (R-P2)", i+1))
			continue
		}
		var oid asn1.ObjectIdentifier
		var explicit, utf8Value cryptobyte.String
		if !gn.body.ReadASN1ObjectIdentifier(&oid) {
			problems = append(problems, fmt.Sprintf("entry %d: malformed otherName", i+1))
			continue
		}
		oids = append(oids, oid)
		if !gn.body.ReadASN1(&explicit, tagExplicit0) || !gn.body.Empty() ||
			!explicit.ReadASN1(&utf8Value, cbasn1.UTF8String) || !explicit.Empty() || !utf8.Valid(utf8Value) {
			problems = append(problems, fmt.Sprintf("otherName %s: value is not [0] EXPLICIT UTF8String", oid))
			continue
		}
		if k := slices.IndexFunc(sanOrder, func(on otherName) bool { return on.oid.Equal(oid) }); k >= 0 {
			values[k], has[k] = utf8Value, true
		}
	}
	if !slices.EqualFunc(oids, sanOrder, func(a asn1.ObjectIdentifier, b otherName) bool { return a.Equal(b.oid) }) {
		got := make([]string, len(oids))
		for i, oid := range oids {
			got[i] = oid.String()
		}
		want := make([]string, len(sanOrder))
		for i, on := range sanOrder {
			want[i] = on.oid.String()
		}
		problems = append(problems, fmt.Sprintf("otherNames are [%s], want [%s] in this order (R-P2)", strings.Join(got, ", "), strings.Join(want, ", ")))
	}
	reqValues := sanValues(req)
	for i, on := range sanOrder {
		if has[i] && string(values[i]) != reqValues[i] {
			problems = append(problems, fmt.Sprintf("%s (%s) differs from the request", on.field, on.oid))
		}
	}
	// The maps must fit the texts they describe, whatever the request says.
	for _, pair := range []struct{ text, digits int }{{0, 4}, {3, 5}} { // Name, NameMap; Address, AddressMap
		if !has[pair.text] || !has[pair.digits] {
			continue
		}
		text, m := sanOrder[pair.text], sanOrder[pair.digits]
		t, mv := values[pair.text], values[pair.digits]
		if len(bytes.Trim(mv, "01")) != 0 {
			problems = append(problems, fmt.Sprintf("%s has digits other than 0 and 1", m.field))
		}
		if n := utf8.RuneCount(t); utf8.RuneCount(mv) != n {
			problems = append(problems, fmt.Sprintf("%s has %d digits for the %d characters of %s; one per character (R-P2)", m.field, utf8.RuneCount(mv), n, text.field))
		}
	}
	return problems
}

// checkIssuerAltName checks the SIGN issuerAltName against cfg's, whose
// DER is want.
func checkIssuerAltName(v []byte, cfg Config, want []byte) []string {
	seq, ok := readSequence(v)
	names, ok2 := readGeneralNames(seq)
	if !ok || !ok2 {
		return []string{"malformed GeneralNames"}
	}
	if len(names) != 1 || names[0].tag != x509enc.TagDirectoryName {
		return []string{"want exactly one directoryName (R-P2)"}
	}
	if !bytes.Equal(names[0].body, want) {
		return []string{fmt.Sprintf("directoryName is not %s", cfg.IssuerAltName)}
	}
	return nil
}

// checkCRLDistributionPoints checks the partition's URL and name, whose DER
// is wantName.
func checkCRLDistributionPoints(v []byte, want CRLDistributionPoint, wantName []byte) []string {
	uri, name, err := x509enc.ParseCRLDistributionPoints(v)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if uri != want.URL {
		problems = append(problems, fmt.Sprintf("URI %q, want %q", uri, want.URL))
	}
	if !bytes.Equal(name, wantName) {
		problems = append(problems, fmt.Sprintf("directoryName is not %s", want.Name))
	}
	return problems
}

func checkCertificatePolicies(v []byte, s spec, cps string) []string {
	policies, ok := readSequence(v)
	var info, qualifiers, qualifier, uri cryptobyte.String
	var policy, qualifierID asn1.ObjectIdentifier
	if !ok || !policies.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1ObjectIdentifier(&policy) {
		return []string{"malformed"}
	}
	var problems []string
	if !policies.Empty() {
		problems = append(problems, "more than one policy; want exactly one")
	}
	if !policy.Equal(s.policy) {
		problems = append(problems, fmt.Sprintf("policy %s, want %s for %s", policy, s.policy, s.name))
	}
	if !info.ReadASN1(&qualifiers, cbasn1.SEQUENCE) || !info.Empty() {
		return append(problems, "no policy qualifiers; want one CPS URI")
	}
	if !qualifiers.ReadASN1(&qualifier, cbasn1.SEQUENCE) || !qualifiers.Empty() {
		return append(problems, "want exactly one policy qualifier")
	}
	if !qualifier.ReadASN1ObjectIdentifier(&qualifierID) || !qualifierID.Equal(oidQualifierCPS) {
		return append(problems, "the qualifier is not id-qt-cps")
	}
	if !qualifier.ReadASN1(&uri, cbasn1.IA5String) || !qualifier.Empty() {
		return append(problems, "the CPS URI is not an IA5String")
	}
	if string(uri) != cps {
		problems = append(problems, fmt.Sprintf("CPS URI %q, want %q", uri, cps))
	}
	return problems
}

func checkAuthorityInfoAccess(v []byte, ocsp string) []string {
	descs, ok := readSequence(v)
	var desc, location cryptobyte.String
	var method asn1.ObjectIdentifier
	if !ok || !descs.ReadASN1(&desc, cbasn1.SEQUENCE) {
		return []string{"malformed"}
	}
	if !descs.Empty() {
		return []string{"more than one AccessDescription; want the OCSP URL only"}
	}
	if !desc.ReadASN1ObjectIdentifier(&method) || !method.Equal(oidAccessOCSP) {
		return []string{"accessMethod is not id-ad-ocsp"}
	}
	if !desc.ReadASN1(&location, x509enc.TagURI) || !desc.Empty() {
		return []string{"accessLocation is not a URI"}
	}
	if string(location) != ocsp {
		return []string{fmt.Sprintf("OCSP URL %q, want %q", location, ocsp)}
	}
	return nil
}
