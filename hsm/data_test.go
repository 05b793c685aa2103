package hsm

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestDataObjects: a data object is created, read back (by a Token opened
// afterwards too: it is a token object), replaced, listed by
// label in id order, and deleted; it is a private to the login.
func TestDataObjects(t *testing.T) {
	ctx := context.Background()
	tok := openToken(t, labelMain)
	const label = "test-data"
	t.Cleanup(func() {
		for _, app := range []string{"a", "b"} {
			tok.DeleteData(ctx, label, app)
		}
	})
	if got, err := tok.ReadData(ctx, label); err != nil || len(got) != 0 {
		t.Fatalf("ReadData before any write: %v, %v; want none", got, err)
	}
	for _, o := range []DataObject{
		{Label: label, Application: "b", Value: []byte("first b")},
		{Label: label, Application: "a", Value: []byte("first a")},
		{Label: label, Application: "b", Value: []byte("second b")},
	} {
		if err := tok.WriteData(ctx, o); err != nil {
			t.Fatalf("WriteData(%s): %v", o, err)
		}
	}
	again := openToken(t, labelMain, func(c *Config) { c.PoolSize = 1 })
	got, err := again.ReadData(ctx, label)
	if err != nil || len(got) != 2 || got[0].Application != "a" || string(got[0].Value) != "first a" || string(got[1].Value) != "second b" {
		t.Fatalf("ReadData: %v, %v; want a=first a, b=second b", got, err)
	}
	err = tok.do(ctx, "check attributes", func(s session) error {
		hs, err := findData(s, label, "a")
		if err != nil || len(hs) != 1 {
			t.Fatalf("find: %v, %d objects", err, len(hs))
		}
		attrs, err := s.ctx.GetAttributeValue(s.h, hs[0], []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, nil), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, nil), pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, nil)})
		if err != nil {
			return err
		}
		for i, name := range []string{"CKA_TOKEN", "CKA_PRIVATE", "CKA_MODIFIABLE"} {
			if !attrBool(attrs[i].Value) {
				t.Errorf("%s is false", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.DeleteData(ctx, label, "a"); err != nil {
		t.Fatal(err)
	}
	if err := tok.DeleteData(ctx, label, "a"); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
	if got, err := tok.ReadData(ctx, label); err != nil || len(got) != 1 || got[0].Application != "b" {
		t.Errorf("ReadData after deleting a: %v, %v", got, err)
	}
	if err := tok.WriteData(ctx, DataObject{Label: label}); err == nil {
		t.Error("a data object without an application was written")
	}
}

// TestDataObjectRecovery: a creation whose answer is lost (the session
// closed under it) is retried on a new session, which leaves one object
// with the value. A write that fails after creating the new object leaves
// both old and new, and the next write leaves one again. A lost login is
// redone rather than taken for "no object".
func TestDataObjectRecovery(t *testing.T) {
	ctx := context.Background()
	f := newFaults()
	tok := openFaulty(t, labelFaults, f)
	const label = "test-data-recovery"
	const app = "one"
	t.Cleanup(func() { tok.DeleteData(ctx, label, app) })
	values := func() []string {
		t.Helper()
		got, err := tok.ReadData(ctx, label)
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, o := range got {
			vs = append(vs, string(o.Value))
		}
		slices.Sort(vs)
		return vs
	}

	if err := tok.WriteData(ctx, DataObject{Label: label, Application: app, Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	f.failAfterNext("CreateObject", ckr(pkcs11.CKR_SESSION_CLOSED))
	if err := tok.WriteData(ctx, DataObject{Label: label, Application: app, Value: []byte("v2")}); err != nil {
		t.Fatalf("WriteData with a lost answer: %v", err)
	}
	if got := values(); !slices.Equal(got, []string{"v2"}) {
		t.Fatalf("after a retried write: %q; want one object holding v2", got)
	}

	f.failAlways("DestroyObject", ckr(pkcs11.CKR_FUNCTION_FAILED))
	err := tok.WriteData(ctx, DataObject{Label: label, Application: app, Value: []byte("v3")})
	f.failAlways("DestroyObject", nil)
	if err == nil || errors.Is(err, ErrTokenUnavailable) {
		t.Errorf("WriteData with a failing destroy: %v; want the failure reported", err)
	}
	if got := values(); !slices.Equal(got, []string{"v2", "v3"}) {
		t.Fatalf("after a failed destroy: %q; want the old and the new value", got)
	}
	f.failNext("FindObjectsInit", ckr(pkcs11.CKR_USER_NOT_LOGGED_IN))
	if err := tok.WriteData(ctx, DataObject{Label: label, Application: app, Value: []byte("v4")}); err != nil {
		t.Fatalf("WriteData after a lost login: %v", err)
	}
	if got := values(); !slices.Equal(got, []string{"v4"}) {
		t.Fatalf("after the next write: %q; want one object holding v4", got)
	}
}
