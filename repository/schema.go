package repository

import "time"

// SchemaVersion names the schema of /index.json. Fields are only ever
// added under it; a change of meaning or a removal gets a new version.
const SchemaVersion = "shomei.repository.v1"

// Index is the repository as /index.json serves it (and as the page at /
// shows it). URLs in it are absolute, under server.public_url, as in the
// certificates; times are RFC 3339 in UTC.
type Index struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// GeneratedAt is when the CRL snapshot shown was taken.
	GeneratedAt time.Time `json:"generated_at"`
	// CPSURL is the certification practice statement, as the
	// certificates' policy qualifier gives it.
	CPSURL string `json:"cps_url"`
	// OCSPURLs are the OCSP responders of the certificates' Authority
	// Information Access; empty when certificates name none.
	OCSPURLs []string `json:"ocsp_urls"`
	// BundleURL is BundleFile: every generation's self-signed certificate.
	BundleURL string `json:"issuers_bundle_url"`
	// Issuers are the issuer key generations, by profile then generation.
	Issuers []Generation `json:"issuers"`
	// CRLs is one page of the CRLs, by partition name.
	CRLs CRLPage `json:"crls"`
}

// Generation is one issuer key generation (R-K1).
type Generation struct {
	// Profile is "sign" (署名用) or "auth" (利用者証明用).
	Profile    string `json:"profile"`
	Generation uint32 `json:"generation"`
	// State is ACTIVE, PENDING, SUPERSEDED, COMPROMISED, RETIRED or
	// DESTROYED.
	State       string      `json:"state"`
	Certificate Certificate `json:"certificate"`
	// Links are its link certificates with the generation before it,
	// NewWithOld then OldWithNew; none for the first generation.
	Links []Certificate `json:"links"`
}

// Certificate is one published issuer or link certificate.
type Certificate struct {
	// Name is its file name at /issuers/ without extension.
	Name string `json:"name"`
	// Kind is KindIssuer, KindNewWithOld or KindOldWithNew.
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// KeyID is the subjectKeyIdentifier, upper-case hex.
	KeyID string `json:"key_id"`
	// SHA256 is the fingerprint as Fingerprint writes it.
	SHA256    string    `json:"sha256_fingerprint"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// PEM and DER are its URLs as PEM and as DER (.cer).
	PEM string `json:"pem_url"`
	DER string `json:"cer_url"`
}

// CRLPage is one page of the CRLs.
type CRLPage struct {
	// Page is 1-based; Pages is at least 1; PageSize is the most Items
	// a page holds; Total counts every CRL.
	Page     int   `json:"page"`
	Pages    int   `json:"pages"`
	PageSize int   `json:"page_size"`
	Total    int   `json:"total"`
	Items    []CRL `json:"items"`
}

// CRL is the CRL a partition serves (R-R5).
type CRL struct {
	// Partition is its name: <profile>-g<generation>-<municipality
	// code>[-s<shard>].
	Partition string `json:"partition"`
	// URL is where it is published, as its certificates'
	// cRLDistributionPoints say.
	URL        string    `json:"url"`
	Number     uint64    `json:"crl_number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	// Entries is how many revoked certificates it lists; Bytes its size.
	Entries int `json:"entries"`
	Bytes   int `json:"bytes"`
}
