package hsm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestParseECPublicKey: CKA_EC_POINT is accepted wrapped in an OCTET STRING,
// as the standard says, and bare, as some tokens return it — including the
// bare points (about one in 256) whose first bytes read as an OCTET STRING
// header of just the right length.
func TestParseECPublicKey(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		oid   asn1.ObjectIdentifier
	}{{elliptic.P256(), oidP256}, {elliptic.P384(), oidP384}} {
		t.Run(tc.curve.Params().Name, func(t *testing.T) {
			params, err := asn1.Marshal(tc.oid)
			if err != nil {
				t.Fatal(err)
			}
			check := func(k *ecdsa.PrivateKey) {
				t.Helper()
				bare, err := k.PublicKey.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				wrapped, err := asn1.Marshal(bare)
				if err != nil {
					t.Fatal(err)
				}
				for form, point := range map[string][]byte{"bare": bare, "wrapped": wrapped} {
					pub, err := parseECPublicKey(params, point)
					if err != nil || !pub.Equal(&k.PublicKey) {
						t.Fatalf("%s point %x: %v", form, point, err)
					}
				}
			}
			for range 1000 {
				k, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				check(k)
			}
			// A bare point 04 || X || Y whose X starts with the length of
			// the rest: it parses as a complete OCTET STRING.
			coord := (tc.curve.Params().BitSize + 7) / 8
			for tries := 0; ; tries++ {
				k, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if bare, _ := k.PublicKey.Bytes(); int(bare[1]) == 2*coord-1 {
					check(k)
					break
				}
				if tries > 100000 {
					t.Fatal("no point with a misleading first byte found")
				}
			}
		})
	}
	params, _ := asn1.Marshal(oidP256)
	for name, point := range map[string][]byte{
		"compressed": append([]byte{2}, make([]byte, 32)...),
		"truncated":  {4, 1, 2, 3},
		"empty":      nil,
	} {
		if _, err := parseECPublicKey(params, point); err == nil {
			t.Errorf("%s point accepted", name)
		}
	}
}

func TestBytesToUint(t *testing.T) {
	b8 := make([]byte, 8)
	binary.NativeEndian.PutUint64(b8, pkcs11.CKK_EC)
	b4 := make([]byte, 4)
	binary.NativeEndian.PutUint32(b4, 0x1234)
	for _, tc := range []struct {
		in   []byte
		want uint
	}{{b8, pkcs11.CKK_EC}, {b4, 0x1234}} {
		if got, err := bytesToUint(tc.in); err != nil || got != tc.want {
			t.Errorf("bytesToUint(%x) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if _, err := bytesToUint([]byte{1, 2, 3}); err == nil {
		t.Error("a 3-byte CK_ULONG was accepted")
	}
}

func TestECDSADERLength(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		n     int
		ok    bool
	}{
		{elliptic.P256(), 64, true},
		{elliptic.P256(), 96, false}, // a P-384 signature
		{elliptic.P256(), 62, false},
		{elliptic.P384(), 96, true},
		{elliptic.P384(), 64, false},
		{elliptic.P384(), 0, false},
	} {
		raw := make([]byte, tc.n)
		for i := range raw {
			raw[i] = 1
		}
		if _, err := ecdsaDER(raw, tc.curve); (err == nil) != tc.ok {
			t.Errorf("%s, %d bytes: %v", tc.curve.Params().Name, tc.n, err)
		}
	}
}

// TestRSAPublicKeyFromPrivateObject: a public key object under an RSA key's
// label and id that belongs to another key does not fool the Signer: the
// modulus comes from the private key object, which is the one that signs.
func TestRSAPublicKeyFromPrivateObject(t *testing.T) {
	tok := openToken(t, labelMain)
	ctx := context.Background()
	ref := KeyRef{Label: "rsa-pub", ID: randomID(t)}
	gen, err := tok.GenerateKey(ctx, ref, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	decoy := KeyRef{Label: "rsa-decoy", ID: randomID(t)}
	if _, err := tok.GenerateKey(ctx, decoy, RSA2048); err != nil {
		t.Fatal(err)
	}
	// Replace the key's public object with the decoy's.
	err = tok.do(ctx, "swap public objects", func(s session) error {
		mine, err := findObjects(s, ref, pkcs11.CKO_PUBLIC_KEY)
		if err != nil {
			return err
		}
		other, err := findObjects(s, decoy, pkcs11.CKO_PUBLIC_KEY)
		if err != nil {
			return err
		}
		if len(mine) != 1 || len(other) != 1 {
			return errors.New("public objects not found")
		}
		raw, _, _ := tok.mod.current()
		if err := raw.DestroyObject(s.h, mine[0]); err != nil {
			return err
		}
		return s.ctx.SetAttributeValue(s.h, other[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.Label), pkcs11.NewAttribute(pkcs11.CKA_ID, ref.ID),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Signer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !gen.Public().(*rsa.PublicKey).Equal(s.Public()) {
		t.Fatal("the Signer's public key is the decoy public object's")
	}
	if err := sign(s); err != nil {
		t.Fatal(err)
	}
}

// TestGenerateKeyIsNotRetried: once the request has reached the token, a
// failure is not retried (it may have made the key) and says to check.
func TestGenerateKeyIsNotRetried(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f, func(c *Config) { c.RetryInterval = 1 })
	ctx := context.Background()

	t.Run("failure after the request", func(t *testing.T) {
		ref := KeyRef{Label: "gen-once", ID: randomID(t)}
		f.failAfterNext("GenerateKeyPair", ckr(pkcs11.CKR_DEVICE_ERROR))
		_, err := tok.GenerateKey(ctx, ref, ECDSAP256)
		if !errors.Is(err, ErrTokenUnavailable) || !strings.Contains(err.Error(), "the key may have been created all the same") {
			t.Fatalf("GenerateKey = %v, want ErrTokenUnavailable saying the key may exist", err)
		}
		if n := f.count("GenerateKeyPair"); n != 1 {
			t.Errorf("GenerateKeyPair called %d times, want once", n)
		}
		keys, err := tok.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slicesContainsRef(keys, ref) {
			t.Error("the key was made, but is not listed")
		}
	})
	t.Run("failure before the request", func(t *testing.T) {
		generated := f.count("GenerateKeyPair")
		f.failNext("FindObjectsInit", ckr(pkcs11.CKR_SESSION_HANDLE_INVALID))
		if _, err := tok.GenerateKey(ctx, KeyRef{Label: "gen-retry", ID: randomID(t)}, ECDSAP256); err != nil {
			t.Fatalf("GenerateKey after a session failure before the request: %v", err)
		}
		if n := f.count("GenerateKeyPair") - generated; n != 1 {
			t.Errorf("GenerateKeyPair called %d times, want once", n)
		}
	})
}

func slicesContainsRef(keys []KeyInfo, ref KeyRef) bool {
	for _, k := range keys {
		if k.Label == ref.Label && string(k.ID) == string(ref.ID) {
			return true
		}
	}
	return false
}

// TestErrorMessages: errors say "hsm:" once, name the token, the operation
// and the key once, and then what went wrong.
func TestErrorMessages(t *testing.T) {
	tok := openToken(t, labelMain)
	ctx := context.Background()
	ref := KeyRef{Label: "msg", ID: randomID(t)}
	if _, err := tok.GenerateKey(ctx, ref, ECDSAP256); err != nil {
		t.Fatal(err)
	}
	_, exists := tok.GenerateKey(ctx, ref, ECDSAP256)
	_, missing := tok.Signer(ctx, KeyRef{Label: "nope", ID: []byte{7}})
	for _, tc := range []struct {
		err  error
		is   error
		want string
	}{
		{exists, ErrKeyExists, `hsm: token "hsm-test": generate key ` + ref.String() + `: a key with that label and id already exists`},
		{missing, ErrKeyNotFound, `hsm: token "hsm-test": find key label "nope" id 07: no private key with that label and id`},
	} {
		if !errors.Is(tc.err, tc.is) || tc.err.Error() != tc.want {
			t.Errorf("error = %v\nwant    %s", tc.err, tc.want)
		}
	}
}

// TestSignaturesAreVerified: a signature that does not verify with the key
// (a fault in the HSM, or the wrong key) is never returned.
func TestSignaturesAreVerified(t *testing.T) {
	f := newFaults()
	tok := openFaulty(t, labelFaults, f)
	for _, alg := range []KeyAlgorithm{RSA2048, ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			s, err := tok.GenerateKey(context.Background(), KeyRef{Label: "verify-" + string(alg), ID: randomID(t)}, alg)
			if err != nil {
				t.Fatal(err)
			}
			f.set(func(f *faults) { f.corrupt = true })
			err = sign(s)
			f.set(func(f *faults) { f.corrupt = false })
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("sign with a faulty HSM = %v, want ErrBadSignature", err)
			}
			if err := sign(s); err != nil {
				t.Fatal(err)
			}
		})
	}
}
