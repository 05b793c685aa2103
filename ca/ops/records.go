package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/caller"
	"github.com/shomei-pki/shomei/ca/service"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// Records answers for what the CA recorded: VerifyAudit, ExportAudit
// (records_audit.go), Backup (records_backup.go), ListResponders,
// RevokeResponder (records_responders.go), ListRenewalNotices
// (records_notices.go). Each operator action it takes (a verification, an
// export, a backup, a revocation, a notices list) is recorded in the
// audit log with the operator's name (R-K3).
type Records struct {
	cfg RecordsConfig
	// backups and verifies hold a token while one runs: one at a time
	// each (a second is ResourceExhausted).
	backups, verifies chan struct{}
}

// RecordsConfig is what Records needs.
type RecordsConfig struct {
	// Store is the CA's open store; required.
	Store *store.Store
	// Token is the HSM holding the audit key and its witness (ca/audit);
	// required.
	Token *hsm.Token
	// SpoolDir is where a backup's snapshot is written before it is sent,
	// so that the store's read transaction lasts as long as a local copy,
	// not as long as the network; default: a bbolt store file's directory
	// (which holds personal data already, and is checked to be private).
	SpoolDir string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SendTimeout ends a backup whose client has not taken one message
	// (at most BackupChunk bytes) for this long, freeing the one backup
	// slot; default DefaultSendTimeout.
	SendTimeout time.Duration
	// Log gets internal errors (no personal data); discarded when nil.
	Log *slog.Logger
	// AuditMetrics, if set, count VerifyAudit's verifications.
	AuditMetrics *audit.VerifyMetrics
}

// DefaultSendTimeout is RecordsConfig.SendTimeout's default: a minute
// for one message of at most 1 MiB (≈17 KiB/s).
const DefaultSendTimeout = time.Minute

// NewRecords makes the Records part.
func NewRecords(cfg RecordsConfig) (*Records, error) {
	if cfg.Store == nil || cfg.Token == nil {
		return nil, errors.New("ops: records need the store and the HSM token")
	}
	if cfg.SpoolDir == "" && cfg.Store.Path() != "" {
		cfg.SpoolDir = filepath.Dir(cfg.Store.Path())
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("ops: records need a spool directory for backups (store.spool_dir)")
	}
	if err := os.MkdirAll(cfg.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("ops: spool directory: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	return &Records{cfg: cfg, backups: make(chan struct{}, 1), verifies: make(chan struct{}, 1)}, nil
}

// oneAtATime takes sem's token, or says that what already holds it runs.
func oneAtATime(sem chan struct{}, what string) (release func(), err error) {
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
		return nil, status.Errorf(codes.ResourceExhausted, "%s is already running: one at a time; try again when it is done", what)
	}
}

// actor is the calling operator as the audit log names them:
// "operator:alice" for a configured operator client, "local:alice" on a
// development CA.
func actor(ctx context.Context) (string, error) {
	name, err := Operator(ctx)
	if err != nil {
		return "", err
	}
	if c, _ := caller.From(ctx); c.Kind == caller.Operator {
		return c.String(), nil
	}
	return name, nil
}

// record appends one audit record of an operator action.
func (r *Records) record(who, action string, fields ...string) error {
	rec := &storev1.AuditRecord{Time: timestamppb.New(r.cfg.Now()), Actor: who, Action: action}
	for i := 0; i+1 < len(fields); i += 2 {
		rec.Fields = append(rec.Fields, &storev1.AuditField{Key: fields[i], Value: fields[i+1]})
	}
	if err := r.cfg.Store.AppendAudit(rec); err != nil {
		return fmt.Errorf("recording %s in the audit log: %w", action, err)
	}
	return nil
}

// statusError maps err to a gRPC status once (ca/service.StatusError);
// a gRPC status passes through.
func (r *Records) statusError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return service.StatusError(r.cfg.Log, err)
}

// invalid is the refusal of a malformed field.
func invalid(field, rule, format string, args ...any) error {
	return &ca.Error{Kind: ca.KindInvalid, Violations: []ca.Violation{{Field: field, Rule: rule, Description: fmt.Sprintf(format, args...)}}}
}

// rfc3339 formats t for the API: RFC 3339 in UTC, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
