package hsm

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// DestroyKey removes the private and the public key object of one key
// pair, leaves a key of the same label but another id alone, and says
// "not found" without an error when run again.
func TestDestroyKey(t *testing.T) {
	tok := openToken(t, labelMain)
	ctx := context.Background()
	gone := KeyRef{Label: "destroy-me", ID: randomID(t)}
	kept := KeyRef{Label: "destroy-me", ID: randomID(t)}
	for _, ref := range []KeyRef{gone, kept} {
		if _, err := tok.GenerateKey(ctx, ref, ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	found, err := tok.DestroyKey(ctx, gone)
	if err != nil || !found {
		t.Fatalf("DestroyKey = %v, %v; want found, nil", found, err)
	}
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sawKept bool
	for _, k := range keys {
		if k.Label == gone.Label && bytes.Equal(k.ID, gone.ID) {
			t.Fatalf("the destroyed key %s is still listed", gone)
		}
		sawKept = sawKept || (k.Label == kept.Label && bytes.Equal(k.ID, kept.ID))
	}
	if !sawKept {
		t.Fatalf("the other key %s under the same label went too", kept)
	}
	if _, err := tok.Signer(ctx, gone); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Signer after DestroyKey = %v, want ErrKeyNotFound", err)
	}
	// The public key object went with it: the label and id can be used again.
	if _, err := tok.GenerateKey(ctx, gone, ECDSAP256); err != nil {
		t.Errorf("GenerateKey under the destroyed key's label and id: %v", err)
	}
	if _, err := tok.DestroyKey(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if found, err := tok.DestroyKey(ctx, gone); err != nil || found {
		t.Errorf("DestroyKey again = %v, %v; want not found, nil", found, err)
	}
	if _, err := tok.DestroyKey(ctx, KeyRef{Label: "destroy-me"}); err == nil {
		t.Error("DestroyKey without an id destroyed something")
	}
}
