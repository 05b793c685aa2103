package ca

import (
	"crypto/x509"
	"fmt"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
)

// R-V7 made operable: an issuer certificate must outlive every certificate
// it issues, so issuance is refused once the longest certificate it may
// have to issue would end after it (plan.go). Operators see it coming: a
// gauge of each issuer's remaining life and, well before refusals start, a
// warning in ListKeys saying by when to rotate.

// rotationMargin is how long before the first refusal ListKeys starts
// warning.
const rotationMargin = 1 // year

// outlives says whether an issuer certificate outlives a certificate that
// expires on expiry (R-V7): the rule issuance applies and the warning
// predicts.
func outlives(iss *x509.Certificate, expiry validity.Date) bool {
	return !expiry.EndOfDay().After(iss.NotAfter)
}

// longestExpiry is the latest expiry date a certificate issued or renewed
// on day can have: a renewal in the window by a holder whose birthday is
// that very day, which gets the 6th birthday after it (R-V4,
// validity.RenewalExpiry) — longer than a new issuance's 5th (R-V1); the
// caps (R-V5) only shorten it.
func longestExpiry(day validity.Date) validity.Date {
	birth, err := validity.NewDate(day.Year-20, day.Month, day.Day)
	if err != nil { // Feb 29 of a year 20 years after a non-leap one
		birth, _ = validity.NewDate(day.Year-20, day.Month, day.Day-1)
	}
	exp, err := validity.RenewalExpiry(birth, day.AddDays(1), day, false)
	if err != nil {
		return validity.NthBirthdayAfter(birth, day, 6)
	}
	return exp
}

// lastIssuanceDay is the last day on which every certificate the issuer may
// have to issue still ends within it; from the day after, some are refused
// (R-V7).
func lastIssuanceDay(iss *x509.Certificate) validity.Date {
	end := validity.DateOf(iss.NotAfter)
	day := longestBefore(end)
	for !outlives(iss, longestExpiry(day)) {
		day = day.AddDays(-1)
	}
	for outlives(iss, longestExpiry(day.AddDays(1))) {
		day = day.AddDays(1)
	}
	return day
}

// longestBefore is a first guess of the last issuance day: the longest
// validity (six years, R-V4) before end.
func longestBefore(end validity.Date) validity.Date {
	d, err := validity.NewDate(end.Year-6, end.Month, end.Day)
	if err != nil {
		d, _ = validity.NewDate(end.Year-6, end.Month, end.Day-1)
	}
	return d
}

// rotationWarning is ListKeys's warning for the issuing generation named
// name, or "" when its remaining life is long enough: set from rotationMargin
// year before the last issuance day.
func rotationWarning(name string, iss *x509.Certificate, now time.Time) string {
	last := lastIssuanceDay(iss)
	warnFrom, err := validity.NewDate(last.Year-rotationMargin, last.Month, last.Day)
	if err != nil {
		warnFrom, _ = validity.NewDate(last.Year-rotationMargin, last.Month, last.Day-1)
	}
	if validity.DateOf(now).Before(warnFrom) {
		return ""
	}
	return fmt.Sprintf("R-V7: %s ends on %s; from %s on, certificates it would have to issue could outlive it and are refused: rotate before %s",
		name, validity.DateOf(iss.NotAfter), last.AddDays(1), last.AddDays(1))
}

// KeyGeneration is an issuer key generation as operators list it (R-K1,
// R-V7): its record and certificate, what it still answers for, and the
// R-V7 warning for the active one.
type KeyGeneration struct {
	issuer.Issuer
	// Name is its short name, "sign-g2".
	Name string
	// Certificates is its unexpired certificates (revoked or not) and the
	// last expiry among them.
	Certificates store.GenerationCertificates
	// Warning is set for the active generation when its remaining life is
	// close to the longest certificate it may have to issue (R-V7).
	Warning string
}

// KeyGenerations lists every issuer key generation of both profiles,
// ordered by profile then generation, as the store records them now. It
// reads every certificate record once (to count the unexpired ones): an
// operator's question.
func (c *CA) KeyGenerations() ([]KeyGeneration, error) {
	issuers, err := issuer.Load(c.cfg.Store)
	if err != nil {
		return nil, err
	}
	now := c.now()
	counts, err := c.cfg.Store.UnexpiredByGeneration(now)
	if err != nil {
		return nil, err
	}
	out := make([]KeyGeneration, 0, len(issuers))
	for _, is := range issuers {
		g := KeyGeneration{Issuer: is, Name: IssuerName(is.Profile, is.Generation),
			Certificates: counts[store.GenerationID{Profile: is.Profile, Generation: is.Generation}]}
		if is.State == storev1.KeyState_KEY_STATE_ACTIVE {
			g.Warning = rotationWarning(g.Name, is.Certificate, now)
		}
		out = append(out, g)
	}
	return out, nil
}
