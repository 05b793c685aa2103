// Package validity is Shomei's validity engine: the dates of spec §3 as pure
// functions of dates. It owns
//
//   - Japan calendar dates (Date, JST, DateOf) and the certificate notAfter of
//     an expiry date (Date.EndOfDay, R-P1);
//   - birthdays and ages (BirthdayIn, Age, NthBirthdayAfter; R-V2, R-A3);
//   - the expiry date of a new issuance (Expiry, R-V1) and of a renewal,
//     with its window (RenewalWindowOpens, RenewalExpiry; R-V3, R-V4);
//   - the caps by the card and the AUTH certificate (ApplyCaps, R-V5);
//   - the status of a certificate at an instant (StatusAt, R-V6), and the
//     one expiry rule that issuance, renewal, revocation, events and CRL
//     entries all judge by (Live, Expired);
//   - the era-coded date of birth of the SIGN certificate (EraCode, R-P2).
//
// It does not decide whether a holder may have a certificate, store anything,
// or revoke the certificate a renewal supersedes: the CA core does, using
// these functions.
//
// # Invariants
//
//   - No clock. Every function takes the dates and instants it needs; callers
//     inject now (DateOf(now) for today's date).
//   - Japan dates only, in a fixed UTC+9 zone: results never depend on the
//     machine's time zone or on tzdata being installed.
//   - A Date from NewDate, ParseDate or a function of this package is a day
//     that exists, in years MinYear..MaxYear (DateOf excepted: it gives the
//     date of any instant). Date literals are not checked; the functions
//     that return errors check their dates, the others expect good ones.
//   - Expiry dates are dates; a certificate's notAfter is EndOfDay of its
//     expiry date, 23:59:59 JST, and the certificate is valid through that
//     whole second.
//   - Errors wrap the sentinels ErrInvalidDate, ErrWindowNotOpen and
//     ErrExpired, and never contain a date of birth (R-P4): errors get logged.
//     ErrWindowNotOpen's message does give the opening date, which the
//     municipal system needs to tell the holder.
//
// # Decisions
//
// These settle what the spec leaves open.
//
//   - Birthdays (R-V1). A birthday is an anniversary of the birth in a later
//     year; the day of birth is not one. So a certificate issued on the day
//     of birth expires on the 5th anniversary.
//   - Feb 29 (R-V2). For expiry dates and renewal windows a person born on
//     Feb 29 has the birthday on Feb 28 in non-leap years (BirthdayIn), so an
//     issuance on that Feb 28 is on a birthday and does not count. For ages
//     the same person reaches the new age on Mar 1 in non-leap years (Age):
//     on Feb 28 of a non-leap year they are still the younger age, so R-A3
//     refuses them a SIGN certificate on the Feb 28 of the year they turn 15.
//     Age goes up on the birthday itself, as in everyday use.
//   - Renewal window (R-V3). It runs from RenewalWindowOpens to the expiry
//     date, both included. For holders living abroad (国外転出者) "1 year
//     before" follows the same rule as "3 months before": the day after the
//     same date one year earlier, or the 1st of the next month when that date
//     does not exist (only for an expiry on Feb 29: 2028-02-29 opens on
//     2027-03-01).
//   - Renewal expiry (R-V4). RenewalExpiry does not apply the caps; the
//     caller applies ApplyCaps to its result as to any expiry date. The 6th
//     birthday is counted from the renewal date even when the old expiry was
//     not a birthday (it had been capped): the rule only guarantees that no
//     time is lost.
//   - Caps (R-V5). The zero Date means "no cap". A cap is reported only when
//     it is strictly earlier than the uncapped expiry date; when the card and
//     the AUTH certificate give the same date the card is reported.
//     ApplyCaps does not check that the result is after the issuance date:
//     the CA must refuse an issuance whose capped expiry is not.
//   - Status (R-V6). Revocation wins over expiry; time is compared in whole
//     seconds, as X.509 writes it. There is no "not yet valid" status.
//   - Era codes (R-P2). Meiji begins on 1868-01-25 (Gregorian for Meiji 1-1-1;
//     the era, proclaimed on 1868-10-23, was applied from the first day of the
//     year); earlier dates are refused. The Gregorian date is written for
//     births before 1873 too, when Japan still used the lunisolar calendar.
//     An era begins on the first day listed in era.go; Reiwa runs on until
//     a new era is added there.
package validity
