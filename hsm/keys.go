package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// KeyAlgorithm names a key type and size that Shomei generates in the HSM.
type KeyAlgorithm string

// The key algorithms GenerateKey supports.
const (
	RSA2048   KeyAlgorithm = "rsa2048"
	RSA3072   KeyAlgorithm = "rsa3072"
	RSA4096   KeyAlgorithm = "rsa4096"
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	ECDSAP384 KeyAlgorithm = "ecdsa-p384"
)

// KeyAlgorithms lists every supported KeyAlgorithm.
var KeyAlgorithms = []KeyAlgorithm{RSA2048, RSA3072, RSA4096, ECDSAP256, ECDSAP384}

// ParseKeyAlgorithm checks that s names a supported algorithm.
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	for _, a := range KeyAlgorithms {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("hsm: unknown key algorithm %q (want one of %v)", s, KeyAlgorithms)
}

func (a KeyAlgorithm) rsaBits() int {
	switch a {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Named-curve OIDs, RFC 5480 §2.1.1.1.
var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

func (a KeyAlgorithm) curve() (elliptic.Curve, asn1.ObjectIdentifier) {
	switch a {
	case ECDSAP256:
		return elliptic.P256(), oidP256
	case ECDSAP384:
		return elliptic.P384(), oidP384
	}
	return nil, nil
}

// AlgorithmOf names the algorithm of a public key, or returns an error for a
// key type or size Shomei does not use for issuers.
func AlgorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	a, err := algorithmOf(pub)
	if err != nil {
		return "", fmt.Errorf("hsm: %w", err)
	}
	return a, nil
}

func algorithmOf(pub crypto.PublicKey) (KeyAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		for _, a := range []KeyAlgorithm{RSA2048, RSA3072, RSA4096} {
			if k.N.BitLen() == a.rsaBits() {
				return a, nil
			}
		}
		return "", fmt.Errorf("RSA key of %d bits is not supported", k.N.BitLen())
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return "", fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("%T keys are not supported", pub)
}

// KeyRef names a key in the token by its CKA_LABEL and CKA_ID.
type KeyRef struct {
	Label string
	ID    []byte
}

func (r KeyRef) String() string {
	return fmt.Sprintf("label %q id %s", r.Label, hex.EncodeToString(r.ID))
}

func (r KeyRef) check() error {
	if r.Label == "" || len(r.ID) == 0 {
		return fmt.Errorf("hsm: a key needs both a label and an id (got %s)", r)
	}
	return nil
}

// KeyInfo describes a private key found in the token.
type KeyInfo struct {
	KeyRef
	Algorithm KeyAlgorithm // empty when the key type is not one Shomei uses
	Public    crypto.PublicKey
	// Protection flags of the private key object, as the token reports them.
	Sensitive, Extractable, Private bool
}

// GenerateKey makes a new key pair inside the token. The private key is a
// token object that is private, sensitive and not extractable, usable only
// for signing; it never exists outside the HSM. It refuses to run if a key
// with the same label and id already exists.
func (t *Token) GenerateKey(ctx context.Context, ref KeyRef, alg KeyAlgorithm) (*Signer, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	if _, err := ParseKeyAlgorithm(string(alg)); err != nil {
		return nil, err
	}
	common := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.Label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, ref.ID),
	}
	pubTmpl := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
	}, common...)
	privTmpl := append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_DERIVE, false),
	}, common...)
	var mech *pkcs11.Mechanism
	if bits := alg.rsaBits(); bits > 0 {
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)
		pubTmpl = append(pubTmpl,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		privTmpl = append(privTmpl, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
	} else {
		_, oid := alg.curve()
		params, err := asn1.Marshal(oid)
		if err != nil {
			return nil, fmt.Errorf("hsm: encoding curve %s: %w", alg, err)
		}
		mech = pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)
		pubTmpl = append(pubTmpl,
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		privTmpl = append(privTmpl, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
	}

	// Key generation is not idempotent: once the request has gone to the
	// token, a failure does not say whether the key exists, and trying
	// again could make a second one. Only what comes before is retried.
	op := "generate key " + ref.String()
	var (
		pub  crypto.PublicKey
		priv pkcs11.ObjectHandle
		gen  uint64
		sent bool
	)
	err := t.run(ctx, op, func(s session) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
			found, err := findObjects(s, ref, class)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				return ErrKeyExists
			}
		}
		sent = true
		pubH, privH, err := s.ctx.GenerateKeyPair(s.h, []*pkcs11.Mechanism{mech}, pubTmpl, privTmpl)
		if err != nil {
			return err
		}
		if alg.rsaBits() > 0 {
			pub, err = readRSAPublicKey(s, privH)
		} else {
			pub, err = readECPublicKey(s, pubH)
		}
		priv, gen = privH, s.gen
		return err
	}, func() bool { return !sent })
	if err != nil {
		if sent {
			err = fmt.Errorf("%w; the key may have been created all the same: list the token's keys and look for it before trying again", err)
		}
		return nil, err
	}
	return &Signer{tok: t, ref: ref, pub: pub, signOp: signOpOf(ref), handle: priv, handleGen: gen, hasHandle: true}, nil
}

// findObjects returns the handles of objects of class with ref's label and id.
func findObjects(s session, ref KeyRef, class uint) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if ref.Label != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.Label))
	}
	if len(ref.ID) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, ref.ID))
	}
	return findMatching(s, tmpl)
}

// findMatching returns the handles of every object matching tmpl: the one
// search loop of this package.
func findMatching(s session, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := s.ctx.FindObjectsInit(s.h, tmpl); err != nil {
		return nil, err
	}
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := s.ctx.FindObjects(s.h, 64)
		if err != nil {
			_ = s.ctx.FindObjectsFinal(s.h) // the search error is the one to report
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	return all, s.ctx.FindObjectsFinal(s.h)
}

// findPrivateKey returns the handle of the one private key with ref. Before
// saying that there is none, it checks that the session is logged in:
// private objects are out of sight otherwise.
func (t *Token) findPrivateKey(s session, ref KeyRef) (pkcs11.ObjectHandle, error) {
	hs, err := findObjects(s, ref, pkcs11.CKO_PRIVATE_KEY)
	if err != nil {
		return 0, err
	}
	switch len(hs) {
	case 1:
		return hs[0], nil
	case 0:
		if err := loggedIn(s); err != nil {
			return 0, err
		}
		return 0, ErrKeyNotFound
	default:
		return 0, fmt.Errorf("%w: %d keys match", ErrKeyAmbiguous, len(hs))
	}
}

// keyType reads an object's CKA_KEY_TYPE.
func keyType(s session, h pkcs11.ObjectHandle) (uint, error) {
	attrs, err := s.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return 0, err
	}
	return bytesToUint(attrs[0].Value)
}

// publicKeyOf returns the public half of the private key priv. An RSA private
// key object carries its modulus and public exponent, and it is the key that
// signs, so they are read from it. An EC private key carries no point: it is
// read from the public key object with the same label and id, which must be
// the only one and on the same curve.
func publicKeyOf(s session, ref KeyRef, priv pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	kt, err := keyType(s, priv)
	if err != nil {
		return nil, err
	}
	switch kt {
	case pkcs11.CKK_RSA:
		return readRSAPublicKey(s, priv)
	case pkcs11.CKK_EC:
	default:
		return nil, fmt.Errorf("%w: key type %#x", ErrUnsupported, kt)
	}
	if ref.Label == "" || len(ref.ID) == 0 {
		// A search without the label or the id would match other keys' public objects.
		return nil, errors.New("an EC key without both a label and an id: its public key object cannot be found")
	}
	pubs, err := findObjects(s, ref, pkcs11.CKO_PUBLIC_KEY)
	if err != nil {
		return nil, err
	}
	switch len(pubs) {
	case 1:
	case 0:
		return nil, errors.New("the token keeps no public key object with the EC key's label and id")
	default:
		return nil, fmt.Errorf("%d public key objects have the EC key's label and id", len(pubs))
	}
	attrs, err := s.ctx.GetAttributeValue(s.h, priv, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil)})
	if err != nil {
		return nil, err
	}
	pub, err := readECPublicKey(s, pubs[0])
	if err != nil {
		return nil, err
	}
	if want, _ := curveOf(attrs[0].Value); want != pub.Curve {
		return nil, errors.New("the public key object with the EC key's label and id is on another curve")
	}
	return pub, nil
}

// readRSAPublicKey reads the modulus and public exponent of an RSA key object.
func readRSAPublicKey(s session, h pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	attrs, err := s.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(attrs[0].Value)
	e := new(big.Int).SetBytes(attrs[1].Value)
	if n.Sign() == 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errors.New("the token returned an unusable RSA public key")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// readECPublicKey reads an EC public key object.
func readECPublicKey(s session, h pkcs11.ObjectHandle) (*ecdsa.PublicKey, error) {
	attrs, err := s.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, err
	}
	return parseECPublicKey(attrs[0].Value, attrs[1].Value)
}

// curveOf decodes CKA_EC_PARAMS, which must name a curve Shomei uses.
func curveOf(params []byte) (elliptic.Curve, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err != nil || len(rest) > 0 {
		return nil, errors.New("EC parameters are not a named curve")
	}
	switch {
	case oid.Equal(oidP256):
		return elliptic.P256(), nil
	case oid.Equal(oidP384):
		return elliptic.P384(), nil
	}
	return nil, fmt.Errorf("EC curve %v is not supported", oid)
}

// parseECPublicKey decodes CKA_EC_PARAMS (a named-curve OID) and CKA_EC_POINT,
// which the standard says is a DER OCTET STRING around the uncompressed point
// but some tokens return bare.
//
// The bare form is recognised first, by its length and leading 0x04: tried
// the other way round, a bare point whose first bytes happen to read as an
// OCTET STRING header of the right length (about one in 256) would be
// mistaken for a wrapped one. A wrapped point is two bytes longer than a bare
// one, so the test cannot mistake it.
func parseECPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	curve, err := curveOf(params)
	if err != nil {
		return nil, err
	}
	coordLen := (curve.Params().BitSize + 7) / 8
	raw := point
	if len(point) != 1+2*coordLen || point[0] != 4 {
		if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("EC point from the token is neither an uncompressed %s point nor one wrapped in an OCTET STRING", curve.Params().Name)
		}
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
	if err != nil {
		return nil, fmt.Errorf("EC point from the token: %w", err)
	}
	return pub, nil
}

// bytesToUint decodes a CK_ULONG attribute, which the token returns in the
// platform's own byte order and size.
func bytesToUint(b []byte) (uint, error) {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b)), nil
	case 4:
		return uint(binary.NativeEndian.Uint32(b)), nil
	}
	return 0, fmt.Errorf("a CK_ULONG attribute of %d bytes from the token", len(b))
}

func attrBool(b []byte) bool { return len(b) > 0 && b[0] != 0 }

// Keys lists the private keys in the token, with their protection flags.
func (t *Token) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := t.do(ctx, "list keys", func(s session) error {
		out = out[:0]
		hs, err := findObjects(s, KeyRef{}, pkcs11.CKO_PRIVATE_KEY)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			if err := loggedIn(s); err != nil {
				return err // an empty list from a logged-out session would be a lie
			}
		}
		for _, h := range hs {
			attrs, err := s.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
				pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
				pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil),
			})
			if err != nil {
				return err
			}
			info := KeyInfo{
				KeyRef:      KeyRef{Label: string(attrs[0].Value), ID: attrs[1].Value},
				Sensitive:   attrBool(attrs[2].Value),
				Extractable: attrBool(attrs[3].Value),
				Private:     attrBool(attrs[4].Value),
			}
			if pub, err := publicKeyOf(s, info.KeyRef, h); err == nil {
				info.Public = pub
				info.Algorithm, _ = algorithmOf(pub) // empty for a type we do not use
			} else if recoveryFor(err) != reportIt {
				return err // the connection failed, not this key
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}
