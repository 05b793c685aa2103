package ca

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/shomei-pki/shomei/ca/jis"
	"github.com/shomei-pki/shomei/ca/validity"
)

var (
	holderIDPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	municipalityPattern = regexp.MustCompile(`^[0-9]{5}$`)
	romajiPattern       = regexp.MustCompile(`^[A-Za-z][A-Za-z -]{0,62}[A-Za-z]$`)
)

// individualNumberRefusal is the description of an id that looks like an
// individual number (looksLikeIndividualNumber).
const individualNumberRefusal = "a 12-digit number looks like an individual number, which Shomei never accepts; use the municipal system's own opaque id"

// validateHolderID checks an opaque holder id (R-P4).
func validateHolderID(vs *violations, field, id string) {
	switch {
	case len(id) > MaxHolderIDBytes:
		vs.add(field, "R-P4", "at most %d bytes", MaxHolderIDBytes)
	case looksLikeIndividualNumber(id):
		vs.add(field, "R-P4", individualNumberRefusal)
	case !holderIDPattern.MatchString(id):
		vs.add(field, "R-P4", "must be 1-64 characters of A-Z, a-z, 0-9, '-' and '_'")
	}
}

// validateMunicipality checks the issuing municipality.
func validateMunicipality(vs *violations, m Municipality, needNames bool) {
	if !municipalityPattern.MatchString(m.Code) {
		vs.add("municipality.code", "R-R5", "must be the 5-digit local government code, e.g. 13221")
	} else if pref := m.Code[:2]; pref < "01" || pref > "47" {
		vs.add("municipality.code", "R-R5", "prefecture part %q is not 01-47", pref)
	}
	if !needNames {
		return
	}
	if !romajiPattern.MatchString(m.PrefectureRomaji) {
		vs.add("municipality.prefecture_romaji", "R-P2", "must be the romanised prefecture, e.g. Tokyo-to (letters, spaces, hyphens)")
	}
	if !romajiPattern.MatchString(m.MunicipalityRomaji) {
		vs.add("municipality.municipality_romaji", "R-P2", "must be the romanised municipality, e.g. Kiyose-shi (letters, spaces, hyphens)")
	}
	for _, f := range []struct{ field, value string }{
		{"municipality.prefecture", m.Prefecture}, {"municipality.municipality", m.Name},
	} {
		if f.value == "" || utf8.RuneCountInString(f.value) > MaxMunicipalityNameRunes || len(jis.Check(f.value)) > 0 {
			vs.add(f.field, "R-R5", "must be the name in Japanese (JIS X 0208/0212), e.g. 東京都 or 清瀬市")
		}
	}
}

// parseDate parses a YYYY-MM-DD field.
func parseDate(vs *violations, field, rule, s string) validity.Date {
	d, err := validity.ParseDate(s)
	if err != nil {
		vs.add(field, rule, "must be a date YYYY-MM-DD")
	}
	return d
}

// nameText is the name as it goes into the certificate: surname, U+3000,
// given name (R-P2).
func nameText(h Holder) string { return h.Surname + "\u3000" + h.GivenName }

// certificateText applies substitutions to a name or address and returns
// the certificate text and its substitution map (R-P5). fieldOf names the
// request field a 0-based code point position belongs to.
func certificateText(vs *violations, text, subsField string, subs []Substitution, fieldOf func(pos int) (string, int)) (string, string) {
	m := map[int]rune{}
	for i, s := range subs {
		r, size := utf8.DecodeRuneInString(s.Character)
		f := fmt.Sprintf("%s[%d]", subsField, i)
		switch {
		case s.Character == "" || size != len(s.Character) || r == utf8.RuneError:
			vs.add(f+".character", "R-P5", "must be exactly one character")
			continue
		case s.Position < 0 || s.Position >= utf8.RuneCountInString(text):
			vs.add(f+".position", "R-P5", "position %d is outside the text (%d characters)", s.Position, utf8.RuneCountInString(text))
			continue
		case m[s.Position] != 0:
			vs.add(f+".position", "R-P5", "position %d is substituted twice", s.Position)
			continue
		}
		m[s.Position] = r
	}
	// Characters that need a substitute and have none: name each, with
	// its position, in the field it came from.
	covered := true
	for _, o := range jis.Check(text) {
		if _, ok := m[o.Position]; ok {
			continue
		}
		covered = false
		field, pos := fieldOf(o.Position)
		hint := ""
		if len(o.Suggestions) > 0 {
			hint = fmt.Sprintf("; suggested substitute %c", o.Suggestions[0])
		}
		vs.add(field, "R-P5", "character %q (U+%04X) at position %d is not in JIS X 0208/0212: supply a substitute for position %d in %s%s",
			o.Rune, o.Rune, pos, o.Position, subsField, hint)
	}
	if !covered || len(vs.list) > 0 {
		return "", ""
	}
	out, smap, err := jis.Substitute(text, m)
	if err != nil {
		vs.add(subsField, "R-P5", "%v", err)
		return "", ""
	}
	return out, smap
}

// personalData validates and encodes what a SIGN certificate carries.
type personalData struct {
	name, nameMap, address, addressMap, dateOfBirth, sex string
}

func validatePersonal(vs *violations, req IssueRequest, birth validity.Date) personalData {
	h := req.Holder
	var p personalData
	for _, f := range []struct{ field, value string }{{"holder.surname", h.Surname}, {"holder.given_name", h.GivenName}} {
		switch {
		case strings.TrimSpace(f.value) == "":
			vs.add(f.field, "R-P2", "is required for a SIGN certificate")
		case strings.ContainsAny(f.value, " \u3000\t\r\n"):
			vs.add(f.field, "R-P2", "must not contain spaces (the certificate puts one full-width space between surname and given name)")
		}
	}
	if n := utf8.RuneCountInString(h.Address); h.Address == "" || n > MaxAddressRunes {
		vs.add("holder.address", "R-P2", "must be 1-%d characters (it has %d)", MaxAddressRunes, n)
	} else if req.Municipality.Prefecture != "" && !strings.HasPrefix(h.Address, req.Municipality.Prefecture) {
		vs.add("holder.address", "R-P2", "must start with the prefecture (%s): the address runs from the prefecture on, without postal code", req.Municipality.Prefecture)
	}
	// An individual number is never put in a certificate (R-P4), in one
	// text or across the name's two.
	for _, f := range []struct{ field, value string }{
		{"holder.surname", h.Surname}, {"holder.given_name", h.GivenName}, {"holder.surname", nameText(h)}, {"holder.address", h.Address},
	} {
		if looksLikeIndividualNumber(f.value) {
			vs.add(f.field, "R-P4", individualNumberRefusal)
			break
		}
	}
	switch h.Sex {
	case SexMale, SexFemale, SexNotRecorded:
		p.sex = fmt.Sprint(int(h.Sex))
	default:
		vs.add("holder.sex", "R-P2", "must be MALE, FEMALE or NOT_RECORDED")
	}
	if len(vs.list) > 0 {
		return p
	}
	surnameLen := utf8.RuneCountInString(h.Surname)
	p.name, p.nameMap = certificateText(vs, nameText(h), "name_substitutions", req.NameSubstitutions, func(pos int) (string, int) {
		if pos < surnameLen {
			return "holder.surname", pos
		}
		return "holder.given_name", pos - surnameLen - 1
	})
	p.address, p.addressMap = certificateText(vs, h.Address, "address_substitutions", req.AddressSubstitutions, func(pos int) (string, int) {
		return "holder.address", pos
	})
	// Substitutes are characters too: the texts as the certificate has them.
	if looksLikeIndividualNumber(p.name) {
		vs.add("name_substitutions", "R-P4", individualNumberRefusal)
	}
	if looksLikeIndividualNumber(p.address) {
		vs.add("address_substitutions", "R-P4", individualNumberRefusal)
	}
	if code, err := validity.EraCode(birth); err != nil {
		vs.add("holder.date_of_birth", "R-P2", "cannot be era-coded: %v", err)
	} else {
		p.dateOfBirth = code
	}
	return p
}
