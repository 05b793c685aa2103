// Package eventfeed reads and writes the bulk events feed: a file of
// resident-record events (a municipality's nightly resident-registry feed),
// one JSON object per line, each becoming one Events.ReportEvent request
// (R-R1). docs/events-feed.md is the format's user documentation; this
// comment is its reference.
//
// # The line format
//
// A line is one JSON object with these keys, all strings or arrays of
// strings:
//
//	event_id           required  unique per municipality; a replay changes nothing (R-R1)
//	municipality_code  required  5-digit local government code, e.g. "13221"
//	holder_id          required  the municipal system's opaque holder id
//	kind               required  record_change | moved_abroad | death | loss_report |
//	                             card_invalidated | stop_using | record_error
//	changed_fields     record_change only, optional: array of
//	                             name | address | date_of_birth | sex (each at most once;
//	                             empty or absent: nothing certified changed, e.g. marriage
//	                             without a new name)
//	cause              record_change only, optional:
//	                             move | marriage | divorce | adoption | correction | other
//	profiles           stop_using only, required: non-empty array of sign | auth
//	serial             record_error only, required: the certificate's serial, 1-40 hex digits
//	effective_time     required  RFC 3339 with seconds and an offset ("Z" or ±hh:mm),
//	                             e.g. "2026-11-21T09:00:00+09:00" (the invalidityDate, R-R3)
//
// For example:
//
//	{"event_id":"13221-20261121-0001","municipality_code":"13221","holder_id":"R-0001","kind":"record_change","changed_fields":["address"],"cause":"move","effective_time":"2026-11-21T09:00:00+09:00"}
//	{"event_id":"13221-20261121-0002","municipality_code":"13221","holder_id":"R-0002","kind":"stop_using","profiles":["auth"],"effective_time":"2026-11-21T10:30:00+09:00"}
//
// Lines are separated by "\n" ("\r\n" is accepted); a UTF-8 byte order mark
// before the first line is ignored. Blank lines and lines whose first
// non-blank character is '#' are skipped. A line is at most MaxLineLength
// bytes.
//
// # Strictness
//
// Decoding is strict, so that a mistake in a feed is found at the line that
// has it, not guessed around: the line must be valid UTF-8 and exactly one
// JSON object with nothing after it; unknown keys, repeated keys, null or
// values of the wrong type, unknown names, missing required keys, empty
// strings, keys that do not belong to the line's kind, repeated array
// elements, a malformed serial and a time that is not RFC 3339 are all
// errors. Key names are matched exactly (case matters).
//
// The decoder checks the line's syntax; the CA checks the rules (holder id
// and event id character sets, a known municipality, an effective time not
// in the future, that the holder and certificate exist). Keeping the rules
// in one place means the feed cannot drift from the API: what the CA
// refuses, it refuses with the field and the rule id.
//
// # Errors carry no personal data
//
// Feed values are personal data (holder ids, and whatever a broken line
// carries by mistake: names, addresses, dates of birth), and error messages
// end up in logs and terminal scrollback (R-P4). An *Error therefore names
// the key at fault and says what is wrong in words fixed by this package; it
// never quotes a value. An unknown key is named only when it looks like a
// key (lower-case snake_case, at most 32 characters); a camelCase or
// upper-case spelling of a known key (holderId, HOLDER_ID) is reported as a
// misspelling of that key; any other unknown key is not shown. Decoding
// never panics on any input (FuzzDecode).
//
// # Why not protojson
//
// protojson would read the request message directly, but it accepts
// lowerCamelCase as well as snake_case names, enum names like
// "EVENT_KIND_DEATH" or numbers, null for any field, and it ignores which
// fields belong to which kind; its errors can quote the offending input. The
// feed is an interface with other organisations' systems and outlives
// proto refactorings, so it gets its own small, documented format with
// exact errors. Encode writes it (for tests, and for systems that want to
// produce a feed from requests); Decode(Encode(r)) equals r.
package eventfeed
