package validity

import (
	"errors"
	"fmt"
	"time"
)

// Renewal errors (R-V3, R-V4). Both are wrapped with the detail of the case;
// test them with errors.Is. Both map to FailedPrecondition.
var (
	// ErrWindowNotOpen: the renewal date is before the renewal window opens.
	// The message gives the opening date.
	ErrWindowNotOpen = errors.New("validity: renewal window not open yet")
	// ErrExpired: the certificate expired before the renewal date; what the
	// holder needs is a new issuance.
	ErrExpired = errors.New("validity: certificate expired, so it cannot be renewed: issue a new one")
)

// BirthdayIn returns the birthday in year of someone born on birth, as
// R-V2 counts it for expiry dates: a person born on Feb 29 has the birthday on
// Feb 28 in non-leap years.
func BirthdayIn(birth Date, year int) Date {
	if birth.Month == time.February && birth.Day == 29 && !isLeap(year) {
		return Date{Year: year, Month: time.February, Day: 28}
	}
	return Date{Year: year, Month: birth.Month, Day: birth.Day}
}

// Age returns the age in whole years, on date on, of someone born on birth
// (R-V2, for the threshold of R-A3). The age goes up on the birthday; a person
// born on Feb 29 reaches the new age on Feb 29 in leap years and on Mar 1 in
// other years (Civil Code art. 143), not on Feb 28 as BirthdayIn counts it.
// The result is negative when on is before birth.
func Age(birth, on Date) int {
	age := on.Year - birth.Year
	if on.Month < birth.Month || (on.Month == birth.Month && on.Day < birth.Day) {
		age--
	}
	return age
}

// NthBirthdayAfter returns the nth birthday strictly after from, counting
// birthdays as BirthdayIn does (R-V1, R-V2): a birthday falling on from itself
// does not count. Birthdays are the anniversaries of birth in the years after
// the year of birth; the day of birth itself is not one. n must be at least 1.
func NthBirthdayAfter(birth, from Date, n int) Date {
	if n < 1 {
		panic(fmt.Sprintf("validity: NthBirthdayAfter with n = %d, want at least 1", n))
	}
	y := max(from.Year, birth.Year+1)
	if !BirthdayIn(birth, y).After(from) {
		y++
	}
	return BirthdayIn(birth, y+n-1)
}

// Expiry returns the expiry date of a certificate newly issued on issued to
// someone born on birth: the 5th birthday after the issuance date, a birthday
// on the issuance date itself not counting (R-V1, with R-V2 for Feb 29).
// The R-V5 caps are applied separately, by ApplyCaps.
func Expiry(birth, issued Date) Date {
	return NthBirthdayAfter(birth, issued, 5)
}

// RenewalWindowOpens returns the first day on which a certificate expiring on
// expiry can be renewed (R-V3). The window runs from that day to the expiry
// date, both included.
//
// Normal holders: the day after the date 3 months before expiry; when that
// date does not exist (3 months before May 31 is Feb 31), the 1st of the
// following month. So expiry 2023-05-31 → 2023-03-01, 2023-05-28 → 2023-03-01,
// 2024-05-28 → 2024-02-29, 2023-06-15 → 2023-03-16.
//
// Holders living abroad (国外転出者): the same rule with 1 year instead of
// 3 months, so expiry 2028-02-29 → 2027-03-01 (decision, see doc.go).
func RenewalWindowOpens(expiry Date, livingAbroad bool) Date {
	y, m := expiry.Year, expiry.Month-3
	if livingAbroad {
		y, m = expiry.Year-1, expiry.Month
	}
	if m < time.January {
		y, m = y-1, m+12
	}
	if expiry.Day > daysIn(y, m) {
		// No such date: the window opens on the 1st of the next month.
		return Date{Year: y, Month: m, Day: 1}.AddDays(daysIn(y, m))
	}
	return Date{Year: y, Month: m, Day: expiry.Day}.AddDays(1)
}

// RenewalExpiry returns the expiry date of a certificate issued on renewal to
// renew one, held by someone born on birth, that expires on oldExpiry
// (R-V3, R-V4):
//
//   - inside the window and before oldExpiry: the 6th birthday after the
//     renewal date, so the renewal loses no time (R-V4);
//   - on oldExpiry itself: the 5th birthday after it, as a new issuance (R-V1);
//     when oldExpiry was a birthday both give that birthday five years later;
//   - before the window opens (RenewalWindowOpens): an error wrapping
//     ErrWindowNotOpen that gives the opening date;
//   - after oldExpiry: an error wrapping ErrExpired; that is a new issuance.
//
// Dates that do not exist give an error wrapping ErrInvalidDate. The R-V5 caps
// are applied separately, by ApplyCaps.
func RenewalExpiry(birth, oldExpiry, renewal Date, livingAbroad bool) (Date, error) {
	if err := errors.Join(
		checkDate("date of birth", birth),
		checkDate("old expiry date", oldExpiry),
		checkDate("renewal date", renewal),
	); err != nil {
		return Date{}, err
	}
	switch opens := RenewalWindowOpens(oldExpiry, livingAbroad); {
	case renewal.After(oldExpiry):
		return Date{}, fmt.Errorf("%w (it expired at the end of %s)", ErrExpired, oldExpiry)
	case renewal.Before(opens):
		return Date{}, fmt.Errorf("%w: it opens on %s", ErrWindowNotOpen, opens)
	case renewal == oldExpiry:
		return Expiry(birth, renewal), nil
	default:
		return NthBirthdayAfter(birth, renewal, 6), nil
	}
}

// Cap says which R-V5 cap shortened an expiry date.
type Cap int

// The R-V5 caps.
const (
	CapNone Cap = iota // no cap shortened the expiry date
	CapCard            // the card's expiry date
	CapAuth            // the expiry date of the holder's current valid AUTH certificate
)

// String returns "NONE", "CARD" or "AUTH" (R-V5).
func (c Cap) String() string {
	switch c {
	case CapNone:
		return "NONE"
	case CapCard:
		return "CARD"
	case CapAuth:
		return "AUTH"
	}
	return fmt.Sprintf("Cap(%d)", int(c))
}

// ApplyCaps returns the earliest of expiry and the non-zero caps, and which
// cap gave it (R-V5). For an AUTH certificate pass the card's expiry date
// only; for a SIGN certificate also the expiry date of the holder's current
// valid AUTH certificate, or the zero Date if there is none.
//
// A cap is reported only if it is strictly earlier than expiry; when the card
// and AUTH caps are the same date the card is reported, since the AUTH
// certificate is itself capped by the card. A zero cardExpiry is ignored like
// a zero authExpiry, but R-V5 makes the card's expiry an input of every
// issuance: the caller must require it.
func ApplyCaps(expiry, cardExpiry, authExpiry Date) (Date, Cap) {
	capped, which := expiry, CapNone
	if !cardExpiry.IsZero() && cardExpiry.Before(capped) {
		capped, which = cardExpiry, CapCard
	}
	if !authExpiry.IsZero() && authExpiry.Before(capped) {
		capped, which = authExpiry, CapAuth
	}
	return capped, which
}

// Status is the status of a certificate at an instant (R-V6).
type Status int

// The R-V6 statuses. The zero Status is not one of them.
const (
	StatusValid Status = iota + 1
	StatusRevoked
	StatusExpired
)

// String returns "VALID", "REVOKED" or "EXPIRED" (R-V6).
func (s Status) String() string {
	switch s {
	case StatusValid:
		return "VALID"
	case StatusRevoked:
		return "REVOKED"
	case StatusExpired:
		return "EXPIRED"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// StatusAt returns the status at instant now of a certificate with the given
// notAfter that is, or is not, revoked (R-V6, R-R2). Revocation wins over
// expiry. The certificate is valid up to and including the whole second of
// notAfter (RFC 5280 validity is inclusive; X.509 times have whole seconds),
// so with notAfter 14:59:59Z it is still valid at 14:59:59.999Z and expired
// at 15:00:00Z. notBefore is not looked at: a certificate is never used
// before it is issued.
func StatusAt(notAfter time.Time, revoked bool, now time.Time) Status {
	switch {
	case revoked:
		return StatusRevoked
	case !Live(notAfter, now):
		return StatusExpired
	}
	return StatusValid
}

// Live reports whether a certificate with the given notAfter has not yet
// expired at instant now: the one rule of expiry that StatusAt, issuance
// (R-A4), renewal (R-V4), revocation and events (R-R1) and CRL entry expiry
// (R-R5) all use. RFC 5280 validity is inclusive and X.509 times have whole
// seconds, so a certificate is live through the whole second of its
// notAfter: with notAfter 14:59:59Z (23:59:59 JST) it is live at
// 14:59:59.999Z and expired at 15:00:00Z. Revocation is not looked at.
func Live(notAfter, now time.Time) bool {
	return !now.Truncate(time.Second).After(notAfter.Truncate(time.Second))
}

// Expired is !Live: the certificate with the given notAfter has expired at
// now.
func Expired(notAfter, now time.Time) bool { return !Live(notAfter, now) }
