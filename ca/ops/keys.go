package ops

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/service"
)

// Keys answers for the issuer key generations: ListKeys, ExportIssuers
// (R-K1, R-V7).
type Keys struct {
	ca  *ca.CA
	log *slog.Logger
}

// KeysConfig is what Keys needs.
type KeysConfig struct {
	// CA is the running CA: its issuer key generations.
	CA *ca.CA
	// Log receives internal errors; slog.Default when nil.
	Log *slog.Logger
}

// NewKeys makes the Keys part.
func NewKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.CA == nil {
		return nil, errors.New("ops: keys: a CA is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Keys{ca: cfg.CA, log: cfg.Log}, nil
}

// ListKeys implements opsv1.OperationsServer.
func (k *Keys) ListKeys(ctx context.Context, _ *opsv1.ListKeysRequest) (*opsv1.ListKeysResponse, error) {
	if _, err := Operator(ctx); err != nil {
		return nil, err
	}
	gens, err := k.ca.KeyGenerations()
	if err != nil {
		return nil, service.StatusError(k.log, err)
	}
	out := &opsv1.ListKeysResponse{}
	for _, g := range gens {
		kg := &opsv1.KeyGeneration{
			Profile: opsv1.Profile(g.Profile), Generation: g.Generation, Name: g.Name, State: apiKeyState(g.State),
			KeyAlgorithm: g.KeyAlgorithm, KeyLabel: g.KeyLabel, KeyId: hex.EncodeToString(g.KeyId),
			SubjectKeyId: hex.EncodeToString(g.Certificate.SubjectKeyId),
			NotBefore:    rfc3339(g.Certificate.NotBefore), NotAfter: rfc3339(g.Certificate.NotAfter),
			UnexpiredCertificates: g.Certificates.Unexpired, Warning: g.Warning,
		}
		if g.ActivateAt != nil {
			kg.ActivateAt = rfc3339(g.ActivateAt.AsTime())
		}
		if !g.Certificates.LastExpiry.IsZero() {
			kg.LastCertificateExpiry = rfc3339(g.Certificates.LastExpiry)
		}
		out.Generations = append(out.Generations, kg)
	}
	return out, nil
}

// ExportIssuers implements opsv1.OperationsServer: every generation's
// self-signed certificate named by its key label ("shomei-sign-g2"), each
// followed by the links that lead to it from the generation before
// ("shomei-sign-g2-by-g1", NewWithOld; "shomei-sign-g1-by-g2", OldWithNew).
func (k *Keys) ExportIssuers(ctx context.Context, _ *opsv1.ExportIssuersRequest) (*opsv1.ExportIssuersResponse, error) {
	if _, err := Operator(ctx); err != nil {
		return nil, err
	}
	out := &opsv1.ExportIssuersResponse{}
	for _, g := range k.ca.IssuerGenerations() {
		out.Certificates = append(out.Certificates, &opsv1.IssuerCertificate{Name: issuer.KeyLabel(g.Profile, g.Generation), CertificateDer: g.Certificate})
		if len(g.NewWithOld) > 0 {
			out.Certificates = append(out.Certificates,
				&opsv1.IssuerCertificate{Name: issuer.LinkName(g.Profile, g.Generation, g.Generation-1), CertificateDer: g.NewWithOld})
		}
		if len(g.OldWithNew) > 0 {
			out.Certificates = append(out.Certificates,
				&opsv1.IssuerCertificate{Name: issuer.LinkName(g.Profile, g.Generation-1, g.Generation), CertificateDer: g.OldWithNew})
		}
	}
	return out, nil
}

// apiKeyState is a stored key state as the API numbers it.
func apiKeyState(s storev1.KeyState) opsv1.KeyState {
	switch s {
	case storev1.KeyState_KEY_STATE_PENDING:
		return opsv1.KeyState_KEY_STATE_PENDING
	case storev1.KeyState_KEY_STATE_ACTIVE:
		return opsv1.KeyState_KEY_STATE_ACTIVE
	case storev1.KeyState_KEY_STATE_SUPERSEDED:
		return opsv1.KeyState_KEY_STATE_SUPERSEDED
	case storev1.KeyState_KEY_STATE_RETIRED:
		return opsv1.KeyState_KEY_STATE_RETIRED
	case storev1.KeyState_KEY_STATE_COMPROMISED:
		return opsv1.KeyState_KEY_STATE_COMPROMISED
	case storev1.KeyState_KEY_STATE_DESTROYED:
		return opsv1.KeyState_KEY_STATE_DESTROYED
	}
	return opsv1.KeyState_KEY_STATE_UNSPECIFIED
}
