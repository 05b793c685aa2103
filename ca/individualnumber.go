package ca

import "unicode"

// An individual number (マイナンバー) is twelve digits, the last a check
// digit. Shomei never accepts, stores or logs one (R-P4), so no id a caller
// chooses (holder_id, event_id, inquiry_id) may look like one:
//
//   - an id of exactly twelve digits is refused whatever its check digit
//     (an opaque id has no reason to be one);
//   - an id holding a run of twelve digits, possibly grouped by
//     separators ("1234-5678-9018", "1234 5678 9018", "1234/5678/9018",
//     "1234 - 5678 - 9018": up to maxSeparators of them between two
//     digits), and not part of a longer run of digits, is refused when the
//     twelfth is the check digit of the other eleven: every real
//     individual number is, and nine in ten other twelve-digit runs (a
//     timestamp "202612061200") are not.
//
// Full-width digits (０-９) count as digits, and any space, punctuation or
// symbol, ASCII or full-width, as a separator, as a clerk's keyboard may
// produce them. The same rule covers the texts a certificate carries (the
// holder's name and address, R-P4: an individual number is never put in
// a certificate).

// looksLikeIndividualNumber reports whether id looks like an individual
// number by the rules above.
func looksLikeIndividualNumber(id string) bool {
	var run []int // the digits of the current run
	sep := 0      // separators since the last digit of a run
	whole := true // id is digits only so far
	for _, r := range id {
		d, isDigit := digitValue(r)
		switch {
		case isDigit:
			run = append(run, d)
			sep = 0
			continue
		case isSeparator(r) && len(run) > 0 && sep < maxSeparators:
			sep++
		default:
			if twelveWithCheckDigit(run) {
				return true
			}
			run, sep = run[:0], 0
		}
		whole = false
	}
	if whole && len(run) == 12 {
		return true
	}
	return twelveWithCheckDigit(run)
}

func digitValue(r rune) (int, bool) {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0'), true
	case r >= '０' && r <= '９':
		return int(r - '０'), true
	}
	return 0, false
}

// maxSeparators is the most separators between two digits of a run.
const maxSeparators = 3

func isSeparator(r rune) bool {
	switch r {
	case 'ー': // katakana prolonged sound mark, typed for a dash
		return true
	}
	return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
}

// twelveWithCheckDigit: run is twelve digits and the last is the check
// digit of the first eleven, per the individual number's rule: with P(n)
// the n-th of the eleven counted from the right and Q(n) = n+1 for n <= 6,
// n-5 for n >= 7, the remainder r of sum P(n)Q(n) by 11 gives the check
// digit 0 when r <= 1, else 11 - r.
func twelveWithCheckDigit(run []int) bool {
	if len(run) != 12 {
		return false
	}
	sum := 0
	for n := 1; n <= 11; n++ {
		q := n + 1
		if n >= 7 {
			q = n - 5
		}
		sum += run[11-n] * q
	}
	check := 0
	if r := sum % 11; r > 1 {
		check = 11 - r
	}
	return run[11] == check
}
