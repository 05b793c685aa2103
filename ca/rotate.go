package ca

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/ca/validity"
	"github.com/shomei-pki/shomei/hsm"
)

// Bounds of a rotation's activation time (R-K1).
const (
	// activateSkew is how far in the past an activation time may be: it
	// then means "at once".
	activateSkew = time.Minute
	// MaxActivateAhead is how far ahead it may be (the operator API
	// refuses more before proposing).
	MaxActivateAhead = 365 * 24 * time.Hour
)

// CheckRotate says whether a rotation of p activating at activateAt (zero:
// at once) could run now; a *Error of KindInvalid or KindPrecondition
// naming the field when not.
func (c *CA) CheckRotate(p Profile, activateAt time.Time) error {
	if err := checkProfile(p); err != nil {
		return err
	}
	if !activateAt.IsZero() {
		now := c.now()
		if activateAt.Before(now.Add(-activateSkew)) {
			return refuse(KindInvalid, "activate_at", "R-K1", "%s is in the past; leave it empty to activate at once", activateAt.UTC().Format(time.RFC3339))
		}
		if activateAt.After(now.Add(MaxActivateAhead)) {
			return refuse(KindInvalid, "activate_at", "R-K1", "%s is more than a year ahead", activateAt.UTC().Format(time.RFC3339))
		}
	}
	issuers, err := issuer.Load(c.cfg.Store)
	if err != nil {
		return err
	}
	for _, is := range issuers {
		if is.Profile == p && is.State == storev1.KeyState_KEY_STATE_PENDING {
			return refuse(KindPrecondition, "profile", "R-K1", "%s is already pending, active at %s: one rotation at a time",
				IssuerName(p, is.Generation), is.ActivateAt.AsTime().UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// Rotate makes a new key generation of p in the HSM, its self-signed
// issuer certificate with the same DN and the two link certificates
// (ca/issuer), and records them with the audit records (actor the
// proposer; the approvers and the proposal as fields) in one transaction.
// New issuance moves to it at activateAt — at once when zero or not in the
// future, the previous generation becoming SUPERSEDED in the same
// transaction; otherwise it is PENDING and the CA's activation timer
// activates it then — without a restart (R-K1). A COMPROMISED latest
// generation is rotated without links: that is how issuance resumes after
// R-K2. If recording fails, the new key is destroyed again.
func (c *CA) Rotate(ctx context.Context, p Profile, activateAt time.Time, by Approval) (*storev1.IssuerKey, error) {
	c.keyOpsMu.Lock()
	defer c.keyOpsMu.Unlock()
	if err := c.CheckRotate(p, activateAt); err != nil {
		return nil, err
	}
	now := c.now()
	prev, ok := c.gens.Load().latest(p)
	if !ok {
		return nil, refuse(KindPrecondition, "profile", "R-K1", "%s has no issuer yet: run the key ceremony", issuer.ShortName(p))
	}
	rot := issuer.Rotation{Token: c.cfg.Token, Previous: prev, Config: c.cfg.Issuers, Now: now}
	if prev.State == storev1.KeyState_KEY_STATE_ACTIVE || prev.State == storev1.KeyState_KEY_STATE_SUPERSEDED {
		_, signer, err := c.IssuerSigner(p, prev.Generation)
		if err != nil {
			return nil, keyError(err)
		}
		rot.PreviousSigner = signer
	}
	gen, err := rot.Next(ctx)
	if err != nil {
		if gen != nil {
			c.discardKey(gen.Key)
		}
		return nil, keyError(err)
	}
	key := gen.Key
	key.CreatedAt = timestamppb.New(now)
	key.State = storev1.KeyState_KEY_STATE_ACTIVE
	if activateAt.After(now) {
		key.State, key.ActivateAt = storev1.KeyState_KEY_STATE_PENDING, timestamppb.New(activateAt)
	}
	if err := c.cfg.Store.AddIssuerKey(key, c.rotationAudit(ctx, gen, prev, now, by)); err != nil {
		c.discardKey(key)
		if errors.Is(err, store.ErrRotationPending) || errors.Is(err, store.ErrGeneration) {
			return nil, &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"profile", "R-K1", err.Error()}}}
		}
		return nil, err
	}
	c.log.Info("issuer key rotated", "issuer", IssuerName(p, key.Generation), "state", stateName(key.State),
		"links", gen.NewWithOld != nil, "proposal", by.ProposalID)
	if err := c.Reload(ctx); err != nil {
		return key, fmt.Errorf("ca: %s is recorded but issuance did not move to it: %w", IssuerName(p, key.Generation), err)
	}
	return key, nil
}

// rotationAudit is the audit trail of a rotation (R-K3): the key, the
// certificate, the links, and the rotation with who asked and approved.
func (c *CA) rotationAudit(ctx context.Context, gen *issuer.Generation, prev issuer.Issuer, now time.Time, by Approval) []*storev1.AuditRecord {
	actor := by.Proposer
	if actor == "" {
		actor = c.actor(ctx)
	}
	k, name := gen.Key, IssuerName(gen.Key.Profile, gen.Key.Generation)
	rec := func(action string, kv ...string) *storev1.AuditRecord {
		r := &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: action}
		for i := 0; i+1 < len(kv); i += 2 {
			r.Fields = append(r.Fields, &storev1.AuditField{Key: kv[i], Value: kv[i+1]})
		}
		return r
	}
	out := []*storev1.AuditRecord{
		rec("issuer.key.generate", "issuer", name, "profile", issuer.ShortName(k.Profile), "generation", fmt.Sprint(k.Generation),
			"token", k.TokenLabel, "key_label", k.KeyLabel, "key_id", hex.EncodeToString(k.KeyId), "algorithm", k.KeyAlgorithm),
		rec("issuer.certificate.create", "issuer", name, "serial", gen.Certificate.SerialNumber.Text(16),
			"ski", hex.EncodeToString(gen.Certificate.SubjectKeyId),
			"not_before", gen.Certificate.NotBefore.UTC().Format(time.RFC3339), "not_after", gen.Certificate.NotAfter.UTC().Format(time.RFC3339)),
	}
	links := "none: the previous generation signs nothing (" + stateName(prev.State) + ")"
	if gen.NewWithOld != nil {
		newWithOld := issuer.LinkName(k.Profile, k.Generation, prev.Generation)
		oldWithNew := issuer.LinkName(k.Profile, prev.Generation, k.Generation)
		out = append(out,
			rec("issuer.link.create", "name", newWithOld, "serial", gen.NewWithOld.SerialNumber.Text(16),
				"not_after", gen.NewWithOld.NotAfter.UTC().Format(time.RFC3339)),
			rec("issuer.link.create", "name", oldWithNew, "serial", gen.OldWithNew.SerialNumber.Text(16),
				"not_after", gen.OldWithNew.NotAfter.UTC().Format(time.RFC3339)))
		links = newWithOld + "," + oldWithNew
	}
	activate := "now"
	if k.ActivateAt != nil {
		activate = k.ActivateAt.AsTime().UTC().Format(time.RFC3339)
	}
	out = append(out, rec("issuer.rotate", "issuer", name, "previous", IssuerName(prev.Profile, prev.Generation),
		"state", stateName(k.State), "activate_at", activate, "links", links,
		"proposal", by.ProposalID, "approvers", strings.Join(by.Approvers, ",")))
	return out
}

// discardKey destroys a key a failed rotation made, so that it is not
// left behind in the token; a failure to do so is logged with the key.
func (c *CA) discardKey(k *storev1.IssuerKey) {
	ref := hsm.KeyRef{Label: k.KeyLabel, ID: k.KeyId}
	if _, err := c.cfg.Token.DestroyKey(context.Background(), ref); err != nil {
		c.log.Error("the failed rotation left its new key in the token; destroy it by hand", "key", ref.String(), "error", err)
	}
}

// CheckRetire says whether generation of p may be retired now: not the
// active or a pending one, and none of its certificates unexpired.
func (c *CA) CheckRetire(p Profile, generation uint32) error {
	is, err := c.storedGeneration(p, generation)
	if err != nil {
		return err
	}
	name := IssuerName(p, generation)
	switch is.State {
	case storev1.KeyState_KEY_STATE_ACTIVE:
		return refuse(KindPrecondition, "generation", "R-K1", "%s is the active generation: rotate first", name)
	case storev1.KeyState_KEY_STATE_PENDING:
		return refuse(KindPrecondition, "generation", "R-K1", "%s is pending activation", name)
	case storev1.KeyState_KEY_STATE_RETIRED, storev1.KeyState_KEY_STATE_DESTROYED:
		return refuse(KindPrecondition, "generation", "R-K1", "%s is already %s", name, stateName(is.State))
	}
	counts, err := c.cfg.Store.UnexpiredByGeneration(c.now())
	if err != nil {
		return err
	}
	if n := counts[store.GenerationID{Profile: p, Generation: generation}]; n.Unexpired > 0 {
		return busyRefusal(name, n)
	}
	return nil
}

func busyRefusal(name string, n store.GenerationCertificates) error {
	return refuse(KindPrecondition, "generation", "R-K1",
		"%s has %d unexpired certificates, the last expiring on %s: it signs their CRLs until then", name, n.Unexpired,
		validity.DateOf(n.LastExpiry))
}

// Retire stops a generation signing anything; its key stays in the HSM.
// The store re-checks, in the transaction that records it, that no
// certificate of the generation is unexpired.
func (c *CA) Retire(ctx context.Context, p Profile, generation uint32, by Approval) error {
	c.keyOpsMu.Lock()
	defer c.keyOpsMu.Unlock()
	if err := c.CheckRetire(p, generation); err != nil {
		return err
	}
	now, name := c.now(), IssuerName(p, generation)
	audit := c.keyOpAudit(ctx, "issuer.retire", name, now, by)
	if err := c.cfg.Store.RetireIssuerKey(p, generation, now, audit); err != nil {
		if busy, ok := errors.AsType[*store.GenerationBusyError](err); ok {
			return busyRefusal(name, busy.GenerationCertificates)
		}
		if errors.Is(err, store.ErrKeyState) {
			return &Error{Kind: KindPrecondition, Err: err, Violations: []Violation{{"generation", "R-K1", err.Error()}}}
		}
		return err
	}
	c.log.Info("issuer key generation retired: it signs nothing more", "issuer", name, "proposal", by.ProposalID)
	return c.Reload(ctx)
}

// CheckDestroy says whether generation of p's key may be destroyed now:
// retired or compromised, not yet destroyed.
func (c *CA) CheckDestroy(p Profile, generation uint32) error {
	is, err := c.storedGeneration(p, generation)
	if err != nil {
		return err
	}
	switch is.State {
	case storev1.KeyState_KEY_STATE_RETIRED, storev1.KeyState_KEY_STATE_COMPROMISED:
		return nil
	}
	return refuse(KindPrecondition, "generation", "R-K1", "%s is %s: only a retired or compromised generation's key is destroyed",
		IssuerName(p, generation), stateName(is.State))
}

// Destroy destroys a generation's private key (and public key object) in
// the HSM by its label and id, then records it DESTROYED with an audit
// record. Run again after an interruption between the two, it finds the
// key gone and records it.
func (c *CA) Destroy(ctx context.Context, p Profile, generation uint32, by Approval) error {
	c.keyOpsMu.Lock()
	defer c.keyOpsMu.Unlock()
	if err := c.CheckDestroy(p, generation); err != nil {
		return err
	}
	is, err := c.storedGeneration(p, generation)
	if err != nil {
		return err
	}
	ref := hsm.KeyRef{Label: is.KeyLabel, ID: is.KeyId}
	found, err := c.cfg.Token.DestroyKey(ctx, ref)
	if err != nil {
		return keyError(err)
	}
	now, name := c.now(), IssuerName(p, generation)
	audit := c.keyOpAudit(ctx, "issuer.key.destroy", name, now, by, "key_label", ref.Label, "key_id", hex.EncodeToString(ref.ID),
		"key_found", fmt.Sprint(found))
	if err := c.cfg.Store.DestroyedIssuerKey(p, generation, audit); err != nil {
		return err
	}
	c.signersMu.Lock()
	delete(c.signers, fmt.Sprintf("%d/%d/%x", p, generation, is.KeyId))
	c.signersMu.Unlock()
	c.log.Info("issuer key destroyed in the HSM", "issuer", name, "key", ref.String(), "found", found, "proposal", by.ProposalID)
	return c.Reload(ctx)
}

// keyOpAudit is the audit record of an approved key operation (R-K3).
func (c *CA) keyOpAudit(ctx context.Context, action, name string, now time.Time, by Approval, kv ...string) []*storev1.AuditRecord {
	actor := by.Proposer
	if actor == "" {
		actor = c.actor(ctx)
	}
	r := &storev1.AuditRecord{Time: timestamppb.New(now), Actor: actor, Action: action,
		Fields: []*storev1.AuditField{{Key: "issuer", Value: name}}}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Fields = append(r.Fields, &storev1.AuditField{Key: kv[i], Value: kv[i+1]})
	}
	r.Fields = append(r.Fields, &storev1.AuditField{Key: "proposal", Value: by.ProposalID},
		&storev1.AuditField{Key: "approvers", Value: strings.Join(by.Approvers, ",")})
	return []*storev1.AuditRecord{r}
}

// storedGeneration reads one generation from the store (not the
// snapshot: a key operation judges what is recorded).
func (c *CA) storedGeneration(p Profile, generation uint32) (issuer.Issuer, error) {
	if err := checkProfile(p); err != nil {
		return issuer.Issuer{}, err
	}
	if generation == 0 {
		return issuer.Issuer{}, refuse(KindInvalid, "generation", "R-K1", "is required; generations start at 1")
	}
	issuers, err := issuer.Load(c.cfg.Store)
	if err != nil {
		return issuer.Issuer{}, err
	}
	for _, is := range issuers {
		if is.Profile == p && is.Generation == generation {
			return is, nil
		}
	}
	return issuer.Issuer{}, refuse(KindNotFound, "generation", "R-K1", "there is no %s", IssuerName(p, generation))
}

func checkProfile(p Profile) error {
	if p != ProfileSign && p != ProfileAuth {
		return refuse(KindInvalid, "profile", "R-K1", "must be SIGN or AUTH")
	}
	return nil
}

// keyError maps an HSM outage to KindUnavailable; anything else is
// returned as it is.
func keyError(err error) error {
	if errors.Is(err, hsm.ErrTokenUnavailable) || errors.Is(err, hsm.ErrPoolExhausted) {
		return &Error{Kind: KindUnavailable, Err: err}
	}
	return err
}
