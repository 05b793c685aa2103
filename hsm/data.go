package hsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/pkcs11"
)

// DataObject is a small value kept in the token as a data object
// (CKO_DATA), named by its CKA_LABEL and CKA_APPLICATION (a data object has
// no CKA_ID). Shomei keeps in the token what must outlive an insider who
// can rewrite the CA's files but cannot log in to the HSM: the audit log's
// witness (ca/audit).
//
// Data objects written here are token objects (persistent) and private
// (only a logged-in session sees, replaces or destroys them).
type DataObject struct {
	Label       string
	Application string
	Value       []byte
}

func (o DataObject) String() string {
	return fmt.Sprintf("data object label %q application %q", o.Label, o.Application)
}

// findData returns the handles of the data objects with label and, if not
// empty, application.
func findData(s session, label, application string) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA), pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}
	if application != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, application))
	}
	return findMatching(s, tmpl)
}

// ReadData returns the data objects labelled label, ordered by application. Before
// saying that there are none it checks that the session is logged in:
// private objects are out of sight otherwise, and "none" must mean none.
func (t *Token) ReadData(ctx context.Context, label string) ([]DataObject, error) {
	if label == "" {
		return nil, errors.New("hsm: reading data objects needs a label")
	}
	var out []DataObject
	err := t.do(ctx, fmt.Sprintf("read data objects labelled %q", label), func(s session) error {
		out = out[:0]
		hs, err := findData(s, label, "")
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return loggedIn(s)
		}
		for _, h := range hs {
			attrs, err := s.ctx.GetAttributeValue(s.h, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, nil),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil),
			})
			if err != nil {
				return err
			}
			out = append(out, DataObject{Label: label, Application: string(attrs[0].Value), Value: attrs[1].Value})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b DataObject) int { return strings.Compare(a.Application, b.Application) })
	return out, nil
}

// WriteData replaces the data objects with obj's label and application
// by one holding obj's value. Tokens may refuse to change a data object's
// value (SoftHSM2 does), so the new object is created first and the old
// ones are destroyed after it: a failure or a crash in between leaves the
// old value, or both, never neither. Readers that can tell the newer value
// (ca/audit's witness carries a counter) take the newest. A retry after a
// creation whose answer was lost finds that object among the old ones and
// destroys it too, so the retry leaves one object.
func (t *Token) WriteData(ctx context.Context, obj DataObject) error {
	if obj.Label == "" || obj.Application == "" {
		return fmt.Errorf("hsm: a data object needs both a label and an application (got %s)", obj)
	}
	return t.do(ctx, "write "+obj.String(), func(s session) error {
		old, err := findData(s, obj.Label, obj.Application)
		if err != nil {
			return err
		}
		_, err = s.ctx.CreateObject(s.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, obj.Label),
			pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, obj.Application),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, obj.Value),
		})
		if err != nil {
			return err
		}
		for _, h := range old {
			if err := s.ctx.DestroyObject(s.h, h); err != nil && !isStaleHandle(err) {
				return err
			}
		}
		return nil
	})
}

// DeleteData destroys every data object with label and application.
// Finding none is not an error.
func (t *Token) DeleteData(ctx context.Context, label, application string) error {
	if label == "" || application == "" {
		return errors.New("hsm: deleting a data object needs both a label and an application")
	}
	obj := DataObject{Label: label, Application: application}
	return t.do(ctx, "delete "+obj.String(), func(s session) error {
		hs, err := findData(s, label, application)
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return loggedIn(s)
		}
		for _, h := range hs {
			if err := s.ctx.DestroyObject(s.h, h); err != nil {
				return err
			}
		}
		return nil
	})
}
