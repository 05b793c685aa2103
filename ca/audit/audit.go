package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// KeyLabel is the HSM label of the audit key.
const KeyLabel = "shomei-audit"

// KeyAlgorithm of a new audit key.
const KeyAlgorithm = hsm.ECDSAP256

// ErrNoKey: the HSM holds no audit key.
var ErrNoKey = errors.New("audit: the HSM holds no audit key (" + KeyLabel + ")")

// Key finds the audit key in tok. With create, a missing key is generated
// (at the key ceremony, or the first start of a CA whose store predates
// it); without, it fails with ErrNoKey.
func Key(ctx context.Context, tok *hsm.Token, create bool, log *slog.Logger) (*hsm.Signer, error) {
	keys, err := tok.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: listing the HSM's keys: %w", err)
	}
	var found []hsm.KeyRef
	for _, k := range keys {
		if k.Label == KeyLabel {
			found = append(found, k.KeyRef)
		}
	}
	switch {
	case len(found) == 1:
		return tok.Signer(ctx, found[0])
	case len(found) > 1:
		return nil, fmt.Errorf("audit: %d keys are labelled %s; remove the extra ones", len(found), KeyLabel)
	case !create:
		return nil, ErrNoKey
	}
	ref := hsm.KeyRef{Label: KeyLabel, ID: make([]byte, 16)}
	if _, err := rand.Read(ref.ID); err != nil {
		return nil, err
	}
	s, err := tok.GenerateKey(ctx, ref, KeyAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("audit: generating the audit key: %w", err)
	}
	if log != nil {
		log.Info("audit key generated in the HSM", "key", KeyLabel, "algorithm", KeyAlgorithm)
	}
	return s, nil
}

// digest is what a checkpoint's signature signs.
func digest(cp *storev1.AuditCheckpoint) []byte {
	h := sha256.New()
	h.Write([]byte("shomei audit checkpoint v1\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, cp.Seq))
	h.Write(cp.RecordSha256)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(cp.Time.AsTime().UnixNano())))
	h.Write([]byte(cp.KeyLabel))
	return h.Sum(nil)
}

// VerifyCheckpoint checks cp's signature with the audit key's public key.
func VerifyCheckpoint(pub crypto.PublicKey, cp *storev1.AuditCheckpoint) error {
	d := digest(cp)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, d, cp.Signature) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d, cp.Signature)
	}
	return fmt.Errorf("audit keys are RSA or ECDSA, not %T", pub)
}

// Defaults of CheckpointerConfig.
const (
	DefaultEvery    = 100
	DefaultInterval = 10 * time.Second
)

// CheckpointerConfig configures a Checkpointer.
type CheckpointerConfig struct {
	Store  *store.Store  // required
	Signer crypto.Signer // the audit key (Key); required
	// Every: a checkpoint at most this many records after the last;
	// default DefaultEvery.
	Every int
	// Interval: a checkpoint at most this long after a record was
	// written; default DefaultInterval.
	Interval time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// Checkpointer signs checkpoints of the audit log. Safe for concurrent
// use.
type Checkpointer struct {
	cfg    CheckpointerConfig
	mu     sync.Mutex
	closed bool
}

// NewCheckpointer checks cfg.
func NewCheckpointer(cfg CheckpointerConfig) (*Checkpointer, error) {
	if cfg.Store == nil || cfg.Signer == nil {
		return nil, errors.New("audit: a checkpointer needs a store and the audit key")
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{cfg: cfg}, nil
}

// Checkpoint signs the log's head, unless the last checkpoint already
// covers it. The head is read, signed outside any store transaction, and
// saved: records appended meanwhile are covered by the next one.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkpoint(ctx)
}

// Close signs a last checkpoint and makes every later Checkpoint do
// nothing, so that the store and the token can be closed after it.
func (c *Checkpointer) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.checkpoint(ctx)
	c.closed = true
	return err
}

func (c *Checkpointer) checkpoint(ctx context.Context) error {
	if c.closed {
		return nil
	}
	seq, hash, err := c.cfg.Store.AuditHead()
	if err != nil || seq == 0 {
		return err
	}
	last, err := c.cfg.Store.LastAuditCheckpoint()
	if err != nil {
		return err
	}
	if last != nil && last.Seq >= seq {
		return nil
	}
	cp := &storev1.AuditCheckpoint{Seq: seq, RecordSha256: hash[:], Time: timestamppb.New(c.cfg.Now()), KeyLabel: KeyLabel}
	var sig []byte
	if cs, ok := c.cfg.Signer.(interface {
		SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error)
	}); ok {
		sig, err = cs.SignContext(ctx, digest(cp), crypto.SHA256)
	} else {
		sig, err = c.cfg.Signer.Sign(rand.Reader, digest(cp), crypto.SHA256)
	}
	if err != nil {
		return fmt.Errorf("audit: signing the checkpoint of record %d: %w", seq, err)
	}
	cp.Signature = sig
	if err := c.cfg.Store.SaveAuditCheckpoint(cp); err != nil {
		return err
	}
	c.cfg.Log.Info("audit checkpoint signed", "seq", seq, "record_sha256", fmt.Sprintf("%x", hash))
	return nil
}

// Run signs a checkpoint whenever Every records or Interval have passed
// since the last, until ctx ends. A failure is logged and retried.
func (c *Checkpointer) Run(ctx context.Context) {
	tick := time.NewTicker(min(time.Second, c.cfg.Interval))
	defer tick.Stop()
	lastAt := c.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return
		}
		seq, _, err := c.cfg.Store.AuditHead()
		if err != nil {
			c.cfg.Log.Error("audit checkpoint: reading the log's head", "error", err)
			continue
		}
		last, err := c.cfg.Store.LastAuditCheckpoint()
		if err != nil {
			c.cfg.Log.Error("audit checkpoint: reading the last checkpoint", "error", err)
			continue
		}
		var signed uint64
		if last != nil {
			signed = last.Seq
		}
		if seq <= signed || (seq-signed < uint64(c.cfg.Every) && c.cfg.Now().Sub(lastAt) < c.cfg.Interval) {
			continue
		}
		if err := c.Checkpoint(ctx); err != nil {
			c.cfg.Log.Error("audit checkpoint failed; retrying", "error", err)
			continue
		}
		lastAt = c.cfg.Now()
	}
}

// Report is what Verify found.
type Report struct {
	store.AuditStatus
	// Certificates is how many certificate records were reconciled.
	Certificates int
}

// Verify checks the audit log of st against the audit key's public key:
// the hash chain, every checkpoint (signature, the record it signed, no
// truncation), and every certificate's state against the log. pub may be
// nil when the HSM holds no audit key: then any checkpoint is an error. The
// unsigned tail is reported, not judged: the caller decides.
func Verify(st *store.Store, pub crypto.PublicKey) (*Report, error) {
	status, err := st.VerifyAuditCheckpoints(func(cp *storev1.AuditCheckpoint) error {
		if pub == nil {
			return ErrNoKey
		}
		return VerifyCheckpoint(pub, cp)
	})
	r := &Report{AuditStatus: status}
	if err != nil {
		return r, err
	}
	r.Certificates, err = st.ReconcileAudit()
	return r, err
}
