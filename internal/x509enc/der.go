package x509enc

import cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

// Size is the length of a DER TLV with a one-octet tag whose contents are
// n octets long: tag, length octets and contents.
func Size(n int) int {
	switch {
	case n < 0x80:
		return 2 + n
	case n < 1<<8:
		return 3 + n
	case n < 1<<16:
		return 4 + n
	case n < 1<<24:
		return 5 + n
	}
	return 6 + n
}

// AppendHeader appends a one-octet tag and the DER length n (X.690
// §8.1.3: short form below 128, else the fewest length octets).
func AppendHeader(b []byte, tag cbasn1.Tag, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(tag), byte(n))
	case n < 1<<8:
		return append(b, byte(tag), 0x81, byte(n))
	case n < 1<<16:
		return append(b, byte(tag), 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(b, byte(tag), 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, byte(tag), 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
