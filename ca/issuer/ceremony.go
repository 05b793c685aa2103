package issuer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrTokenNotEmpty means the token already holds keys under the labels the
// ceremony would create: left over from an earlier, interrupted ceremony, or
// the token belongs to another installation.
var ErrTokenNotEmpty = errors.New("the token already holds Shomei issuer keys")

// Ceremony creates the first generation of both issuers.
type Ceremony struct {
	Token    *hsm.Token
	Store    *store.Store
	Config   Config
	Operator string           // who runs it, for the audit log
	Now      func() time.Time // time.Now when nil
	Log      *slog.Logger     // progress; slog.Default when nil
}

// Run performs the key ceremony on an uninitialised store and an empty token:
// for SIGN and AUTH it generates a key in the HSM, builds and checks the
// self-signed issuer certificate, and proves the key against it; then it
// records both issuers and the audit trail in one transaction. It refuses to
// run over an initialised store, before touching the HSM.
func (c *Ceremony) Run(ctx context.Context) ([]*storev1.IssuerKey, error) {
	if c.Token == nil || c.Store == nil {
		return nil, errors.New("issuer: ceremony needs a token and a store")
	}
	if err := c.Config.Validate(); err != nil {
		return nil, err
	}
	now, log := c.Now, c.Log
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	operator := c.Operator
	if operator == "" {
		operator = "unknown-operator"
	}

	if done, err := c.Store.Initialized(); err != nil {
		return nil, err
	} else if done {
		return nil, fmt.Errorf("issuer: %w: the store %s already has its issuers (see `shomeictl keys list`)", store.ErrAlreadyInitialized, c.Store.Where())
	}
	if err := c.checkTokenEmpty(ctx); err != nil {
		return nil, err
	}

	var keys []*storev1.IssuerKey
	var audit []*storev1.AuditRecord
	record := func(action string, fields ...string) {
		rec := &storev1.AuditRecord{Time: timestamppb.New(now()), Actor: operator, Action: action}
		for i := 0; i+1 < len(fields); i += 2 {
			rec.Fields = append(rec.Fields, &storev1.AuditField{Key: fields[i], Value: fields[i+1]})
		}
		audit = append(audit, rec)
	}
	notBefore, notAfter := c.Config.validity(now())
	for _, p := range Profiles {
		const generation = 1
		ref := hsm.KeyRef{Label: KeyLabel(p, generation), ID: make([]byte, 16)}
		if _, err := rand.Read(ref.ID); err != nil {
			return nil, err
		}
		log.Info("generating issuer key in the HSM", "profile", ShortName(p), "algorithm", c.Config.Algorithm,
			"token", c.Token.Label(), "key_label", ref.Label, "key_id", hex.EncodeToString(ref.ID))
		signer, err := c.Token.GenerateKey(ctx, ref, c.Config.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("issuer: %s key: %w", ShortName(p), err)
		}
		record("issuer.key.generate", "profile", ShortName(p), "generation", "1", "token", c.Token.Label(),
			"key_label", ref.Label, "key_id", hex.EncodeToString(ref.ID), "algorithm", string(c.Config.Algorithm))

		cert, err := build(c.Config.DN(p), signer, c.Config.Algorithm, notBefore, notAfter)
		if err != nil {
			return nil, fmt.Errorf("issuer: %s certificate: %w", ShortName(p), err)
		}
		// Prove the stored reference finds this key and that it signs for
		// the certificate, exactly as the CA will at start-up.
		if _, err := c.Token.SignerFor(ctx, ref, cert); err != nil {
			return nil, fmt.Errorf("issuer: %s key check: %w", ShortName(p), err)
		}
		log.Info("issuer certificate created", "profile", ShortName(p), "subject", c.Config.DN(p).String(),
			"serial", cert.SerialNumber.Text(16), "ski", hex.EncodeToString(cert.SubjectKeyId), "not_after", cert.NotAfter)
		record("issuer.certificate.create", "profile", ShortName(p), "generation", "1",
			"serial", cert.SerialNumber.Text(16), "ski", hex.EncodeToString(cert.SubjectKeyId),
			"not_before", cert.NotBefore.Format(time.RFC3339), "not_after", cert.NotAfter.Format(time.RFC3339))
		keys = append(keys, &storev1.IssuerKey{
			Profile:        p,
			Generation:     generation,
			KeyLabel:       ref.Label,
			KeyId:          ref.ID,
			KeyAlgorithm:   string(c.Config.Algorithm),
			CertificateDer: cert.Raw,
			State:          storev1.KeyState_KEY_STATE_ACTIVE,
			CreatedAt:      timestamppb.New(now()),
			TokenLabel:     c.Token.Label(),
		})
	}
	record("ceremony.complete", "issuers", strconv.Itoa(len(keys)))
	if err := c.Store.InitIssuers(keys, audit); err != nil {
		return nil, fmt.Errorf("issuer: recording the issuers (the new keys stay in the token; delete them before running again): %w", err)
	}
	// The audit key, and the first checkpoint of the log, signed by it
	// and witnessed in the HSM (R-K3, ca/audit).
	key, err := auditlog.Key(ctx, c.Token, true, log)
	if err != nil {
		return nil, err
	}
	cp, err := auditlog.NewCheckpointer(auditlog.CheckpointerConfig{Store: c.Store, Signer: key, Witness: c.Token, Now: now, Log: log})
	if err == nil {
		err = cp.Checkpoint(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("issuer: the first audit checkpoint: %w", err)
	}
	return keys, nil
}

// checkTokenEmpty refuses a token that already holds keys under Shomei's
// labels, or an audit witness.
func (c *Ceremony) checkTokenEmpty(ctx context.Context) error {
	keys, err := c.Token.Keys(ctx)
	if err != nil {
		return fmt.Errorf("issuer: listing the keys in token %q: %w", c.Token.Label(), err)
	}
	var clash []string
	for _, k := range keys {
		if strings.HasPrefix(k.Label, "shomei-") {
			clash = append(clash, k.KeyRef.String())
		}
	}
	// An audit witness left by an earlier CA would not verify with the
	// new audit key, and stop the ceremony after it recorded the issuers.
	witnesses, err := c.Token.ReadData(ctx, auditlog.WitnessLabel)
	if err != nil {
		return fmt.Errorf("issuer: reading the data objects in token %q: %w", c.Token.Label(), err)
	}
	for _, w := range witnesses {
		clash = append(clash, w.String())
	}
	if len(clash) > 0 {
		return fmt.Errorf("issuer: %w: token %q has %s; run the ceremony on an empty token, or delete them (for example with pkcs11-tool --delete-object) if they are left over from an interrupted ceremony",
			ErrTokenNotEmpty, c.Token.Label(), strings.Join(clash, ", "))
	}
	return nil
}

// Issuer is one recorded issuer key generation with its parsed certificate.
type Issuer struct {
	*storev1.IssuerKey
	Certificate *x509.Certificate
}

// Records is where issuer key generations are recorded; *store.Store is one.
type Records interface {
	Issuers() ([]*storev1.IssuerKey, error)
}

// Load returns the issuers recorded in the store, ordered by profile and generation.
func Load(st Records) ([]Issuer, error) {
	keys, err := st.Issuers()
	if err != nil {
		return nil, err
	}
	out := make([]Issuer, 0, len(keys))
	for _, k := range keys {
		cert, err := x509.ParseCertificate(k.CertificateDer)
		if err != nil {
			return nil, fmt.Errorf("issuer: %s generation %d: stored certificate: %w", ShortName(k.Profile), k.Generation, err)
		}
		out = append(out, Issuer{IssuerKey: k, Certificate: cert})
	}
	return out, nil
}

// Keys finds a private key in the HSM and checks it against its
// certificate; *hsm.Token is one.
type Keys interface {
	SignerFor(ctx context.Context, ref hsm.KeyRef, cert *x509.Certificate) (*hsm.Signer, error)
}

// Signer finds the issuer's key in the token and checks it against the
// issuer certificate.
func (i Issuer) Signer(ctx context.Context, tok Keys) (*hsm.Signer, error) {
	return tok.SignerFor(ctx, hsm.KeyRef{Label: i.KeyLabel, ID: i.KeyId}, i.Certificate)
}
