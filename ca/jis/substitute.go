package jis

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Reasons Substitute refuses a text, wrapped in a *CharacterError. The CA
// maps all of them to InvalidArgument.
var (
	// ErrNotAllowed: a character outside JIS X 0208/0212 was given no substitute.
	ErrNotAllowed = errors.New("not in JIS X 0208/0212 and no substitute given")
	// ErrPositionOutOfRange: a substitution position is not a position of the text.
	ErrPositionOutOfRange = errors.New("substitution position out of range")
	// ErrSubstituteNotAllowed: the substitute itself is outside JIS X 0208/0212.
	ErrSubstituteNotAllowed = errors.New("substitute not in JIS X 0208/0212")
	// ErrSubstituteUnchanged: the substitute is the character it replaces.
	ErrSubstituteUnchanged = errors.New("substitute equals the character it replaces")
)

// CharacterError is one character Substitute refuses and why (Err, one of the
// Err* sentinels above; errors.Is sees through it). Its message contains a
// character of a name or address: return it to the caller, never log it.
type CharacterError struct {
	Position   int  // 0-based, in runes
	Rune       rune // the character at Position; 0 when Position is out of range
	Substitute rune // the substitute given; 0 when none was
	Err        error
}

func (e *CharacterError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jis: position %d: ", e.Position)
	switch {
	case errors.Is(e.Err, ErrPositionOutOfRange):
		fmt.Fprintf(&b, "substitute %s: %v", describe(e.Substitute), e.Err)
	case errors.Is(e.Err, ErrNotAllowed):
		fmt.Fprintf(&b, "%s: %v", describe(e.Rune), e.Err)
		writeSuggestions(&b, Suggest(e.Rune))
	default:
		fmt.Fprintf(&b, "%s → %s: %v", describe(e.Rune), describe(e.Substitute), e.Err)
	}
	return b.String()
}

func (e *CharacterError) Unwrap() error { return e.Err }

// Substitute replaces the runes at the given 0-based rune positions with the
// given substitutes and returns the certificate text and its substitution map
// (R-P2: one digit per character of the result, '0' as recorded, '1'
// substituted).
//
// It fails when a position is out of range, a substitute is not Allowed, a
// substitute equals the original, or an offending character is left without
// a substitute. The error names every such position and character: it joins
// one *CharacterError per problem (errors.Join), in position order. Positions
// of allowed characters may be substituted too (the municipal system
// decides); they are marked '1' as well.
//
// Every substitution is one rune for one rune, so the result has as many
// characters as s and the map lines up with both.
func Substitute(s string, subs map[int]rune) (text, substitutionMap string, err error) {
	rs := []rune(s) // one utf8.RuneError per invalid byte, as Check counts
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(subs)) {
		sub := subs[p]
		switch {
		case p < 0 || p >= len(rs):
			errs = append(errs, &CharacterError{Position: p, Substitute: sub, Err: ErrPositionOutOfRange})
		case !Allowed(sub):
			errs = append(errs, &CharacterError{Position: p, Rune: rs[p], Substitute: sub, Err: ErrSubstituteNotAllowed})
		case sub == rs[p]:
			errs = append(errs, &CharacterError{Position: p, Rune: rs[p], Substitute: sub, Err: ErrSubstituteUnchanged})
		}
	}
	for i, r := range rs {
		if _, ok := subs[i]; !ok && !Allowed(r) {
			errs = append(errs, &CharacterError{Position: i, Rune: r, Err: ErrNotAllowed})
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int {
			return cmp.Compare(a.(*CharacterError).Position, b.(*CharacterError).Position)
		})
		return "", "", errors.Join(errs...)
	}

	m := make([]byte, len(rs))
	for i := range rs {
		m[i] = '0'
		if sub, ok := subs[i]; ok {
			rs[i] = sub
			m[i] = '1'
		}
	}
	return string(rs), string(m), nil
}
