package service_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// refused makes a call that must be refused with code and exactly the
// violations want, and checks that it changed nothing: the same
// certificate records and inquiries in the store, the same list for the
// holder through the API. The keys of the refused request go back to the
// pool, since none of them was certified.
func (h *harness) refused(t *testing.T, code codes.Code, want []violation, call func() error, req *cav1.IssueRequest) {
	t.Helper()
	before := h.snapshot(t, req.GetHolder())
	err := call()
	after := h.snapshot(t, req.GetHolder())
	if err == nil {
		t.Fatalf("granted, want %v %v", code, want)
	}
	if before != after {
		t.Errorf("the refused request changed the CA:\nbefore:\n%s\nafter:\n%s", before, after)
	} else {
		for _, p := range req.GetProfiles() {
			holderKeys.giveBack(t, p.Csr)
		}
	}
	checkRefusal(t, err, code, want)
}

// checkRefusal checks a gRPC error: its code, and a BadRequest detail with
// exactly the violations want (by field and rule id, the Reason), each
// description starting with its rule id and containing what want says.
func checkRefusal(t *testing.T, err error, code codes.Code, want []violation) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a gRPC status: %v", err)
	}
	if st.Code() != code {
		t.Errorf("code %v, want %v: %s", st.Code(), code, describe(err))
	}
	var got []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			got = append(got, br.FieldViolations...)
		}
	}
	key := func(field, rule string) string { return field + " " + rule }
	var gotKeys, wantKeys []string
	for _, v := range got {
		gotKeys = append(gotKeys, key(v.Field, v.Reason))
		if !strings.HasPrefix(v.Description, v.Reason+": ") {
			t.Errorf("violation of %s: description %q does not start with the rule id", v.Field, v.Description)
		}
	}
	for _, w := range want {
		wantKeys = append(wantKeys, key(w.field, w.rule))
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("violations %q, want %q: %s", gotKeys, wantKeys, describe(err))
	}
	// Each violation that must say something: one of the field's says it
	// all (a field may be violated more than once, e.g. two characters).
	for _, w := range want {
		if len(w.says) == 0 {
			continue
		}
		var descriptions []string
		for _, v := range got {
			if v.Field == w.field && v.Reason == w.rule {
				descriptions = append(descriptions, v.Description)
			}
		}
		if !slices.ContainsFunc(descriptions, func(d string) bool {
			return !slices.ContainsFunc(w.says, func(s string) bool { return !strings.Contains(d, s) })
		}) {
			t.Errorf("no violation of %s (%s) says all of %q: %q", w.field, w.rule, w.says, descriptions)
		}
	}
}

// describe renders a gRPC error with its field violations.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %q", st.Code(), st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.FieldViolations {
				fmt.Fprintf(&b, "\n\t%s [%s] %s", v.Field, v.Reason, v.Description)
			}
		}
	}
	return b.String()
}

// snapshot renders what a refusal must not change: every certificate
// record and inquiry in the store, and the holder's certificates as
// ListCertificates shows them.
func (h *harness) snapshot(t *testing.T, hol *cav1.Holder) string {
	t.Helper()
	var b strings.Builder
	err := h.store.ForEachCertificate(func(r *storev1.Certificate) error {
		fmt.Fprintf(&b, "record %x %s %s %v %x\n", r.Serial, r.HolderId, r.State, r.Revocation != nil, r.SupersededBy)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	inquiries := slices.Clone(h.inquiries)
	h.mu.Unlock()
	for _, id := range inquiries {
		inq, err := h.store.Inquiry(id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "inquiry %s used %v by %x\n", id, inq.UsedAt != nil, inq.UsedBy)
	}
	list, err := h.client.ListCertificates(context.Background(),
		&cav1.ListCertificatesRequest{MunicipalityCode: kiyose.Code, HolderId: hol.GetHolderId()})
	if err != nil {
		// A holder id the CA refuses (R-P4) has nothing to list.
		fmt.Fprintf(&b, "list: %v\n", status.Code(err))
		return b.String()
	}
	for _, c := range list.Certificates {
		fmt.Fprintf(&b, "listed %s %v %s %s\n", c.Serial, c.Status, c.RevocationReason, c.SupersededBy)
	}
	return b.String()
}
