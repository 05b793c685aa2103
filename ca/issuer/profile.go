package issuer

import (
	"errors"
	"fmt"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// Profiles are the two issuers, in the order the ceremony creates them.
var Profiles = []storev1.Profile{storev1.Profile_PROFILE_SIGN, storev1.Profile_PROFILE_AUTH}

// ShortName is the profile's name in labels, file names and output: "sign" or "auth".
func ShortName(p storev1.Profile) string {
	switch p {
	case storev1.Profile_PROFILE_SIGN:
		return "sign"
	case storev1.Profile_PROFILE_AUTH:
		return "auth"
	}
	return "unknown"
}

// KeyLabel is the CKA_LABEL of a profile's key generation, e.g. "shomei-sign-g1".
func KeyLabel(p storev1.Profile, generation uint32) string {
	return fmt.Sprintf("shomei-%s-g%d", ShortName(p), generation)
}

// DefaultDN returns the issuer DN of the real system for a profile (R-P1):
// C=JP, O=JPKI, OU=JPKI for digital signature | JPKI for user
// authentication, OU=Japan Agency for Local Authority Information Systems.
func DefaultDN(p storev1.Profile) x509enc.DN {
	ou := "JPKI for digital signature"
	if p == storev1.Profile_PROFILE_AUTH {
		ou = "JPKI for user authentication"
	}
	return x509enc.DN{
		{Type: "C", Value: "JP"},
		{Type: "O", Value: "JPKI"},
		{Type: "OU", Value: ou},
		{Type: "OU", Value: "Japan Agency for Local Authority Information Systems"},
	}
}

// Config is how the ceremony makes issuers.
type Config struct {
	// Algorithm of the issuer keys; RSA-2048 by default.
	Algorithm hsm.KeyAlgorithm
	// ValidityYears of the issuer certificates; 10 by default. Issuer
	// certificates must outlive every certificate they issue (R-V7).
	ValidityYears int
	// SignDN and AuthDN are the issuer names; R-P1's by default.
	SignDN, AuthDN x509enc.DN
}

// DefaultConfig is R-P1's issuers: RSA-2048, ten years, the real DNs.
func DefaultConfig() Config {
	return Config{
		Algorithm:     hsm.RSA2048,
		ValidityYears: 10,
		SignDN:        DefaultDN(storev1.Profile_PROFILE_SIGN),
		AuthDN:        DefaultDN(storev1.Profile_PROFILE_AUTH),
	}
}

// Validate checks c and fills in defaults for zero fields.
func (c *Config) Validate() error {
	def := DefaultConfig()
	if c.Algorithm == "" {
		c.Algorithm = def.Algorithm
	}
	if _, err := hsm.ParseKeyAlgorithm(string(c.Algorithm)); err != nil {
		return fmt.Errorf("issuer config: key_algorithm: %w", err)
	}
	if c.ValidityYears == 0 {
		c.ValidityYears = def.ValidityYears
	}
	if c.ValidityYears < 1 || c.ValidityYears > 30 {
		return fmt.Errorf("issuer config: validity_years %d is outside 1..30", c.ValidityYears)
	}
	if len(c.SignDN) == 0 {
		c.SignDN = def.SignDN
	}
	if len(c.AuthDN) == 0 {
		c.AuthDN = def.AuthDN
	}
	if err := errors.Join(c.SignDN.Validate(), c.AuthDN.Validate()); err != nil {
		return fmt.Errorf("issuer config: %w", err)
	}
	return nil
}

// DN returns the configured DN of a profile.
func (c *Config) DN(p storev1.Profile) x509enc.DN {
	if p == storev1.Profile_PROFILE_AUTH {
		return c.AuthDN
	}
	return c.SignDN
}

// validity is the certificate's notBefore and notAfter for issuance at now.
func (c *Config) validity(now time.Time) (time.Time, time.Time) {
	nb := now.UTC().Truncate(time.Second)
	return nb, nb.AddDate(c.ValidityYears, 0, 0)
}

// Signs reports whether a generation in state s signs anything — holder
// certificates (ACTIVE only), its CRL partitions and its delegated OCSP
// responders: ACTIVE, SUPERSEDED and COMPROMISED do (R-K1, R-K2: revoked
// certificates are still published as revoked). PENDING signs nothing
// before its activation, RETIRED nothing after its last certificate
// expired, DESTROYED nothing ever again.
func Signs(s storev1.KeyState) bool {
	switch s {
	case storev1.KeyState_KEY_STATE_ACTIVE, storev1.KeyState_KEY_STATE_SUPERSEDED, storev1.KeyState_KEY_STATE_COMPROMISED:
		return true
	}
	return false
}
