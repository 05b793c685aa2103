package repository

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/shomei-pki/shomei/ca/issuer"
)

// BundleFile is the name of the bundle of trust anchors at /issuers/: every
// generation's self-signed certificate (links are paths, not anchors).
const BundleFile = "issuers.pem"

// IssuersPath is where Issuers' files are served: IssuersPath + name.
const IssuersPath = "/issuers/"

// Kinds of certificate of a generation (Certificate.Kind).
const (
	KindIssuer     = "issuer"     // its self-signed certificate
	KindNewWithOld = "NewWithOld" // its key certified by the generation before (R-K1)
	KindOldWithNew = "OldWithNew" // the generation before's key certified by it (R-K1)
)

// Issuers serves /issuers/: for every issuer key generation its
// self-signed certificate and its link certificates (R-K1) as
// issuer.Published names them, each as <name>.pem and <name>.cer (DER),
// and BundleFile. Set replaces the whole set at once. The zero value
// serves nothing; use NewIssuers.
type Issuers struct {
	snap atomic.Pointer[issuerSnapshot]
}

type issuerSnapshot struct {
	files map[string]file
	names []string // of files, sorted
	gens  []Generation
}

type file struct {
	contentType string
	body        []byte
}

// NewIssuers returns Issuers serving nothing until Set.
func NewIssuers() *Issuers {
	s := &Issuers{}
	s.snap.Store(&issuerSnapshot{files: map[string]file{}})
	return s
}

// Set publishes the certificates of all (issuer.Load's, ordered by
// profile then generation). Every generation is published whatever its
// state: a retired generation's certificate still verifies what it
// signed.
func (s *Issuers) Set(all []issuer.Issuer) {
	snap := &issuerSnapshot{files: map[string]file{}}
	var bundle []byte
	for _, is := range all {
		gen := Generation{Profile: issuer.ShortName(is.Profile), Generation: is.Generation, State: stateName(is)}
		for _, c := range issuer.Published([]issuer.Issuer{is}) {
			block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
			snap.files[c.Name+".pem"] = file{"application/x-pem-file", block}
			snap.files[c.Name+".cer"] = file{"application/pkix-cert", c.DER}
			cert := describe(c)
			switch {
			case !c.Link:
				bundle = append(bundle, block...)
				cert.Kind = KindIssuer
				gen.Certificate = cert
			case c.Name == issuer.LinkName(is.Profile, is.Generation, is.Generation-1):
				cert.Kind = KindNewWithOld
				gen.Links = append(gen.Links, cert)
			default:
				cert.Kind = KindOldWithNew
				gen.Links = append(gen.Links, cert)
			}
		}
		snap.gens = append(snap.gens, gen)
	}
	snap.files[BundleFile] = file{"application/x-pem-file", bundle}
	for name := range snap.files {
		snap.names = append(snap.names, name)
	}
	slices.Sort(snap.names)
	s.snap.Store(snap)
}

// stateName is the generation's state as the page shows it: ACTIVE,
// SUPERSEDED, COMPROMISED, RETIRED, DESTROYED or PENDING.
func stateName(is issuer.Issuer) string {
	return strings.TrimPrefix(is.State.String(), "KEY_STATE_")
}

// describe is what the page says of a published certificate; its paths
// are on this listener.
func describe(c issuer.PublishedCertificate) Certificate {
	out := Certificate{Name: c.Name, PEM: IssuersPath + c.Name + ".pem", DER: IssuersPath + c.Name + ".cer", SHA256: Fingerprint(c.DER)}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil { // issuer.Load parsed the self-signed ones; a link that does not parse is shown as such
		out.Subject = "(does not parse: " + err.Error() + ")"
		return out
	}
	out.Subject, out.Issuer = cert.Subject.String(), cert.Issuer.String()
	out.KeyID = strings.ToUpper(hex.EncodeToString(cert.SubjectKeyId))
	out.NotBefore, out.NotAfter = cert.NotBefore.UTC(), cert.NotAfter.UTC()
	return out
}

// Fingerprint is the SHA-256 fingerprint of der as `openssl x509
// -fingerprint -sha256` prints it: upper-case hex octets joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// current is the snapshot served now (shared: not to be modified).
func (s *Issuers) current() *issuerSnapshot { return s.snap.Load() }

// ServeHTTP serves GET /issuers/{file}: a certificate or the bundle.
func (s *Issuers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	f, ok := s.current().files[name]
	if !ok || strings.ContainsRune(name, '/') {
		http.Error(w, "no such issuer certificate", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(f.body)
}
