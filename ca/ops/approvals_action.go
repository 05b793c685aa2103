package ops

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/store"
)

// The proposal's request, read and checked field by field: a refusal
// names every field that is wrong.

// Bounds of the times in an action.
const (
	maxTimeText   = 64
	maxActivateIn = ca.MaxActivateAhead // the CA's own bound (R-K1)
	clockSkew     = time.Minute
)

// parseAction reads the action into a new proposal's kind, profile,
// generation and times.
func parseAction(act *opsv1.Action, now time.Time) (*storev1.Proposal, []ca.Violation) {
	var vs []ca.Violation
	add := func(field, rule, format string, args ...any) {
		vs = append(vs, ca.Violation{Field: field, Rule: rule, Description: fmt.Sprintf(format, args...)})
	}
	p := &storev1.Proposal{}
	profile := func(field, rule string, v opsv1.Profile) {
		switch v {
		case opsv1.Profile_PROFILE_SIGN:
			p.Profile = storev1.Profile_PROFILE_SIGN
		case opsv1.Profile_PROFILE_AUTH:
			p.Profile = storev1.Profile_PROFILE_AUTH
		default:
			add(field+".profile", rule, "must be SIGN or AUTH")
		}
	}
	generation := func(field, rule string, g uint32) {
		if g == 0 {
			add(field+".generation", rule, "must be a generation number, 1 or more")
		}
		p.Generation = g
	}
	when := func(field, rule, s string) *timestamppb.Timestamp {
		if s == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if len(s) > maxTimeText || err != nil {
			add(field, rule, "must be an RFC 3339 time, e.g. 2027-04-01T09:00:00+09:00")
			return nil
		}
		return timestamppb.New(t)
	}
	switch a := act.GetAction().(type) {
	case *opsv1.Action_Rotate:
		p.Kind = storev1.ProposalKind_PROPOSAL_KIND_ROTATE
		profile("action.rotate", "R-K1", a.Rotate.GetProfile())
		if p.ActivateAt = when("action.rotate.activate_at", "R-K1", a.Rotate.GetActivateAt()); p.ActivateAt != nil {
			switch t := p.ActivateAt.AsTime(); {
			case t.Before(now.Add(-clockSkew)):
				add("action.rotate.activate_at", "R-K1", "is in the past (leave it empty to activate at once)")
			case t.After(now.Add(maxActivateIn)):
				add("action.rotate.activate_at", "R-K1", "is more than a year ahead")
			}
		}
	case *opsv1.Action_Retire:
		p.Kind = storev1.ProposalKind_PROPOSAL_KIND_RETIRE
		profile("action.retire", "R-K1", a.Retire.GetProfile())
		generation("action.retire", "R-K1", a.Retire.GetGeneration())
	case *opsv1.Action_Destroy:
		p.Kind = storev1.ProposalKind_PROPOSAL_KIND_DESTROY
		profile("action.destroy", "R-K1", a.Destroy.GetProfile())
		generation("action.destroy", "R-K1", a.Destroy.GetGeneration())
	case *opsv1.Action_Compromise:
		p.Kind = storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE
		profile("action.compromise", "R-K2", a.Compromise.GetProfile())
		generation("action.compromise", "R-K2", a.Compromise.GetGeneration())
		if p.InvalidSince = when("action.compromise.invalid_since", "R-K2", a.Compromise.GetInvalidSince()); p.InvalidSince != nil &&
			p.InvalidSince.AsTime().After(now.Add(clockSkew)) {
			add("action.compromise.invalid_since", "R-K2", "is in the future")
		}
	default:
		add("action", "R-K1", "exactly one of rotate, retire, destroy, compromise")
	}
	return p, vs
}

// checkReason: 1 to maxReason characters of UTF-8, no control characters.
func checkReason(vs *[]ca.Violation, reason string) {
	bad := !utf8.ValidString(reason) || strings.IndexFunc(reason, unicode.IsControl) >= 0
	if n := utf8.RuneCountInString(reason); n == 0 || n > maxReason || len(reason) > 4*maxReason || bad {
		*vs = append(*vs, ca.Violation{Field: "reason", Rule: "R-K3",
			Description: fmt.Sprintf("1 to %d characters, no control characters: why, for the audit log", maxReason)})
	}
}

// checkID: a proposal id as Approve and WatchProposal take it.
func checkID(id string) error {
	if id == "" || len(id) > store.MaxProposalID || strings.IndexFunc(id, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		return &ca.Error{Kind: ca.KindInvalid, Violations: []ca.Violation{{Field: "id", Rule: "R-K1",
			Description: fmt.Sprintf("a proposal id: 1 to %d printable ASCII characters (ListProposals shows them)", store.MaxProposalID)}}}
	}
	return nil
}

// ruleOf is the rule a kind of operation answers to.
func ruleOf(k storev1.ProposalKind) string {
	if k == storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE {
		return "R-K2"
	}
	return "R-K1"
}

// decided: the proposal will not change any more.
func decided(s storev1.ProposalState) bool {
	return s == storev1.ProposalState_PROPOSAL_STATE_EXECUTED || s == storev1.ProposalState_PROPOSAL_STATE_FAILED ||
		s == storev1.ProposalState_PROPOSAL_STATE_EXPIRED
}

// stateName is "OPEN", "RUNNING", ….
func stateName(s storev1.ProposalState) string {
	return strings.TrimPrefix(s.String(), "PROPOSAL_STATE_")
}

func joinNames(names []string) string { return strings.Join(names, ",") }

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// stamp is a stored time for the API (rfc3339), "" when unset.
func stamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return rfc3339(ts.AsTime())
}

// toProto is a stored proposal as the API shows it.
func toProto(p *storev1.Proposal) *opsv1.Proposal {
	profile := opsv1.Profile(p.Profile) // the two enums share their numbers
	act := &opsv1.Action{}
	switch p.Kind {
	case storev1.ProposalKind_PROPOSAL_KIND_ROTATE:
		act.Action = &opsv1.Action_Rotate{Rotate: &opsv1.RotateKey{Profile: profile, ActivateAt: stamp(p.ActivateAt)}}
	case storev1.ProposalKind_PROPOSAL_KIND_RETIRE:
		act.Action = &opsv1.Action_Retire{Retire: &opsv1.RetireKey{Profile: profile, Generation: p.Generation}}
	case storev1.ProposalKind_PROPOSAL_KIND_DESTROY:
		act.Action = &opsv1.Action_Destroy{Destroy: &opsv1.DestroyKey{Profile: profile, Generation: p.Generation}}
	case storev1.ProposalKind_PROPOSAL_KIND_COMPROMISE:
		act.Action = &opsv1.Action_Compromise{Compromise: &opsv1.CompromiseKey{Profile: profile, Generation: p.Generation,
			InvalidSince: stamp(p.InvalidSince)}}
	}
	return &opsv1.Proposal{Id: p.Id, Action: act, Reason: p.Reason, Proposer: p.Proposer, Approvers: p.Approvers,
		Required: p.Required, State: opsv1.ProposalState(p.State), CreatedAt: stamp(p.CreatedAt), ExpiresAt: stamp(p.ExpiresAt),
		Result: p.Result, Error: p.Error, Done: p.Done, Total: p.Total}
}
