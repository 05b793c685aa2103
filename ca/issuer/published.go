package issuer

import (
	"fmt"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// PublishedCertificate is one certificate relying parties may need, named
// as the CA's /issuers/ serves it and `issuers export` writes it
// (shomei.ops.v1.IssuerCertificate.name).
type PublishedCertificate struct {
	// Name is the file name without extension: the key label
	// ("shomei-sign-g2") of a generation's self-signed certificate, or
	// LinkName of a link certificate.
	Name string
	// DER is the certificate.
	DER []byte
	// Link is set for a link certificate: a path from one generation to
	// another, not a trust anchor.
	Link bool
}

// LinkName names the link certificate of generation subject's key
// certified by generation by's key (R-K1): "shomei-sign-g2-by-g1" is
// NewWithOld of generation 2, "shomei-sign-g1-by-g2" its OldWithNew.
func LinkName(p storev1.Profile, subject, by uint32) string {
	return fmt.Sprintf("%s-by-g%d", KeyLabel(p, subject), by)
}

// Published lists what relying parties may need of issuers (as Load
// returns them, ordered by profile then generation): each generation's
// self-signed certificate, followed, for a generation after the first, by
// its two link certificates with the generation before it — NewWithOld
// (the new key certified by the old), then OldWithNew (R-K1). Every
// generation is listed whatever its state: a retired generation's
// certificate still verifies the signatures made while it was live.
func Published(issuers []Issuer) []PublishedCertificate {
	var out []PublishedCertificate
	for _, is := range issuers {
		out = append(out, PublishedCertificate{Name: is.KeyLabel, DER: is.CertificateDer})
		if is.Generation < 2 {
			continue
		}
		prev := is.Generation - 1
		if len(is.LinkNewWithOldDer) > 0 {
			out = append(out, PublishedCertificate{Name: LinkName(is.Profile, is.Generation, prev), DER: is.LinkNewWithOldDer, Link: true})
		}
		if len(is.LinkOldWithNewDer) > 0 {
			out = append(out, PublishedCertificate{Name: LinkName(is.Profile, prev, is.Generation), DER: is.LinkOldWithNewDer, Link: true})
		}
	}
	return out
}
