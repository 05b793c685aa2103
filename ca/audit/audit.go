package audit

import (
	"bytes"
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
	return verifySignature(pub, digest(cp), cp.Signature)
}

// verifySignature checks an audit key's signature of a SHA-256 digest.
func verifySignature(pub crypto.PublicKey, d, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, d, sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d, sig)
	}
	return fmt.Errorf("audit keys are RSA or ECDSA, not %T", pub)
}

// sign signs a SHA-256 digest with the audit key, within ctx when the key
// can.
func sign(ctx context.Context, signer crypto.Signer, d []byte) ([]byte, error) {
	if cs, ok := signer.(interface {
		SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error)
	}); ok {
		return cs.SignContext(ctx, d, crypto.SHA256)
	}
	return signer.Sign(rand.Reader, d, crypto.SHA256)
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
	// Witness is where the HSM keeps its witness of the last checkpoint
	// (the audit key's token). Every caller that runs against an HSM sets
	// it; without it (unit tests) no witness is kept or checked.
	Witness DataObjects
	// Every: a checkpoint at most this many records after the last;
	// default DefaultEvery.
	Every int
	// Interval: a checkpoint at most this long after a record was
	// written; default DefaultInterval.
	Interval time.Duration
	Now      func() time.Time
	Log      *slog.Logger
	// Metrics, if set, count the check made before each checkpoint: the
	// records appended since the last checkpoint chain from the record it
	// signed (Store.VerifyAuditSince).
	Metrics *VerifyMetrics
}

// Checkpointer signs checkpoints of the audit log. Safe for concurrent
// use.
type Checkpointer struct {
	cfg    CheckpointerConfig
	mu     sync.Mutex
	closed bool
	// witness is the HSM's witness, read at the first checkpoint and
	// kept up to date after; nil when the HSM holds none yet.
	witness       *Witness
	witnessLoaded bool
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

// Close signs a last checkpoint, seals the log there in the HSM's witness
// (a record appended after it, by anyone without the HSM, is then found
// by Verify), and makes every later Checkpoint do nothing, so that the
// store and the token can be closed after it.
func (c *Checkpointer) Close(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.checkpoint(ctx)
	if err == nil {
		err = c.seal(ctx)
	}
	c.closed = true
	return err
}

// CloseOpen signs a last checkpoint and leaves the log open (as a crash
// would): for a stop whose writers may not all have ended.
func (c *Checkpointer) CloseOpen(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.checkpoint(ctx)
	c.closed = true
	return err
}

// Reload forgets the witness read before: the next checkpoint reads it
// from the HSM again. A CA process that shares its store and token with
// others (PostgreSQL) calls it when it becomes the one that checkpoints,
// since the previous one has moved the witness on meanwhile.
func (c *Checkpointer) Reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.witness, c.witnessLoaded = nil, false
}

// Open opens a sealed log for writing: it checks that nothing was
// appended since it was sealed, then has the HSM witness it unsealed.
// Writers call it before they append (Checkpoint does, for shomei-ca's
// first checkpoint at start); a log that is not sealed is left as it is.
func (c *Checkpointer) Open(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadWitness(ctx); err != nil {
		return err
	}
	seq, _, err := c.cfg.Store.AuditHead()
	if err != nil {
		return err
	}
	return c.unseal(ctx, seq)
}

// unseal: see Open; seq is the log's head.
func (c *Checkpointer) unseal(ctx context.Context, seq uint64) error {
	w := c.witness
	if c.cfg.Witness == nil || w == nil || !w.Sealed {
		return nil
	}
	if err := checkWitnessed(c.cfg.Store, w, seq, seq); err != nil {
		return fmt.Errorf("audit: not opening the sealed log: %w", err)
	}
	opened, err := writeWitness(ctx, c.cfg.Witness, c.cfg.Signer, w.Counter+1, w.Checkpoint, false)
	if err != nil {
		return err
	}
	c.witness = opened
	return nil
}

// seal has the HSM witness the last checkpoint as the log's end. The
// checkpoint covers the log's head (checkpoint just ran).
func (c *Checkpointer) seal(ctx context.Context) error {
	w := c.witness
	if c.cfg.Witness == nil || w == nil || w.Sealed {
		return nil
	}
	if seq, _, err := c.cfg.Store.AuditHead(); err != nil || seq != w.Seq() {
		return err // a record came after the checkpoint: not sealed, it stays an unsigned tail
	}
	sealed, err := writeWitness(ctx, c.cfg.Witness, c.cfg.Signer, w.Counter+1, w.Checkpoint, true)
	if err != nil {
		return err
	}
	c.witness = sealed
	return nil
}

func (c *Checkpointer) checkpoint(ctx context.Context) error {
	if c.closed {
		return nil
	}
	if err := c.loadWitness(ctx); err != nil {
		return err
	}
	seq, hash, err := c.cfg.Store.AuditHead()
	if err != nil || seq == 0 {
		return err
	}
	// Never sign over a log that does not extend what the HSM witnessed:
	// the signature would bless the truncation, the rewrite or records
	// appended to a sealed log.
	if w := c.witness; w != nil {
		if err := checkWitnessed(c.cfg.Store, w, seq, seq); err != nil {
			return fmt.Errorf("audit: not signing a checkpoint: %w", err)
		}
	}
	if err := c.unseal(ctx, seq); err != nil {
		return err
	}
	last, err := c.cfg.Store.LastAuditCheckpoint()
	if err != nil {
		return err
	}
	if last == nil || last.Seq < seq {
		if last != nil {
			// What was appended since the last checkpoint must chain
			// from the record it signed: never sign over a break.
			_, err := c.cfg.Store.VerifyAuditSince(last.Seq, last.RecordSha256)
			c.cfg.Metrics.Record(c.cfg.Now(), err)
			if err != nil {
				return fmt.Errorf("audit: not signing a checkpoint: the records since the last one (record %d) do not verify: %w", last.Seq, err)
			}
		}
		if last, err = c.sign(ctx, seq, hash); err != nil {
			return err
		}
	} else if err := c.checkOwn(last); err != nil {
		return err
	}
	return c.witnessCheckpoint(ctx, last)
}

// sign signs and saves a checkpoint of record seq.
func (c *Checkpointer) sign(ctx context.Context, seq uint64, hash [sha256.Size]byte) (*storev1.AuditCheckpoint, error) {
	cp := &storev1.AuditCheckpoint{Seq: seq, RecordSha256: hash[:], Time: timestamppb.New(c.cfg.Now()), KeyLabel: KeyLabel}
	sig, err := sign(ctx, c.cfg.Signer, digest(cp))
	if err != nil {
		return nil, fmt.Errorf("audit: signing the checkpoint of record %d: %w", seq, err)
	}
	cp.Signature = sig
	if err := c.cfg.Store.SaveAuditCheckpoint(cp); err != nil {
		return nil, err
	}
	c.cfg.Log.Info("audit checkpoint signed", "seq", seq, "record_sha256", fmt.Sprintf("%x", hash))
	return cp, nil
}

// checkOwn checks a checkpoint read back from the store before the HSM
// witnesses it: signed by the audit key, over the record the log holds.
func (c *Checkpointer) checkOwn(cp *storev1.AuditCheckpoint) error {
	if c.cfg.Witness == nil || (c.witness != nil && c.witness.Seq() >= cp.Seq) {
		return nil // nothing will be witnessed
	}
	if err := VerifyCheckpoint(c.cfg.Signer.Public(), cp); err != nil {
		return fmt.Errorf("audit: the last checkpoint in the store (record %d) does not verify with the audit key: %w", cp.Seq, err)
	}
	sum, err := c.cfg.Store.AuditRecordHash(cp.Seq)
	if err != nil {
		return err
	}
	if !bytes.Equal(sum[:], cp.RecordSha256) {
		return fmt.Errorf("audit: the last checkpoint in the store does not sign record %d as the log holds it", cp.Seq)
	}
	return nil
}

// witnessBehind reports whether the HSM's witness is known to lag the
// checkpoint of record signed (its write failed): it is retried then.
func (c *Checkpointer) witnessBehind(signed uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Witness != nil && c.witnessLoaded && signed > 0 && (c.witness == nil || c.witness.Seq() < signed)
}

// loadWitness reads the HSM's witness once.
func (c *Checkpointer) loadWitness(ctx context.Context) error {
	if c.cfg.Witness == nil || c.witnessLoaded {
		return nil
	}
	w, err := ReadWitness(ctx, c.cfg.Witness, c.cfg.Signer.Public())
	if err != nil {
		return err
	}
	c.witness, c.witnessLoaded = w, true
	return nil
}

// witnessCheckpoint has the HSM witness cp, the checkpoint now in the
// store, unless it already witnesses it or a later one. The store has
// committed cp first: a crash in between leaves the witness behind the
// log, which verifies, never ahead of it.
func (c *Checkpointer) witnessCheckpoint(ctx context.Context, cp *storev1.AuditCheckpoint) error {
	if c.cfg.Witness == nil || (c.witness != nil && c.witness.Seq() >= cp.Seq) {
		return nil
	}
	var counter uint64 = 1
	if c.witness == nil {
		c.cfg.Log.Info("the HSM holds no witness of the audit log yet: creating it", "witness", WitnessLabel, "seq", cp.Seq)
	} else {
		counter = c.witness.Counter + 1
	}
	w, err := writeWitness(ctx, c.cfg.Witness, c.cfg.Signer, counter, cp, false)
	if err != nil {
		return err
	}
	c.witness = w
	return nil
}

// ActionRollbackAccepted is the audit action of an accepted rollback.
const ActionRollbackAccepted = "audit.rollback.accept"

// AcceptRollback is the operator's escape for a store restored from a
// backup, whose log is older than the HSM's witness: it appends a record
// saying who accepted which rollback (actor, the witnessed record and its
// hash, the log's length and last checkpoint), signs a checkpoint of the
// log so extended, and moves the witness to it. The log must verify
// otherwise (Verify failing only with ErrRolledBack): the caller checks.
// It returns the witness it replaced.
func (c *Checkpointer) AcceptRollback(ctx context.Context, actor string) (*Witness, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.Witness == nil {
		return nil, errors.New("audit: accepting a rollback needs the HSM's witness")
	}
	if err := c.loadWitness(ctx); err != nil {
		return nil, err
	}
	old := c.witness
	if old == nil {
		return nil, errors.New("audit: the HSM holds no witness: there is no rollback to accept")
	}
	seq, _, err := c.cfg.Store.AuditHead()
	if err != nil {
		return nil, err
	}
	last, err := c.cfg.Store.LastAuditCheckpoint()
	if err != nil {
		return nil, err
	}
	var signed uint64
	if last != nil {
		signed = last.Seq
	}
	rec := &storev1.AuditRecord{Time: timestamppb.New(c.cfg.Now()), Actor: actor, Action: ActionRollbackAccepted, Fields: []*storev1.AuditField{
		{Key: "witnessed_seq", Value: fmt.Sprint(old.Seq())},
		{Key: "witnessed_record_sha256", Value: fmt.Sprintf("%x", old.Checkpoint.RecordSha256)},
		{Key: "witnessed_at", Value: old.Checkpoint.GetTime().AsTime().UTC().Format(time.RFC3339)},
		{Key: "log_records", Value: fmt.Sprint(seq)},
		{Key: "log_last_checkpoint", Value: fmt.Sprint(signed)},
	}}
	if err := c.cfg.Store.AppendAudit(rec); err != nil {
		return nil, err
	}
	seq, hash, err := c.cfg.Store.AuditHead()
	if err != nil {
		return nil, err
	}
	cp, err := c.sign(ctx, seq, hash)
	if err != nil {
		return nil, err
	}
	// Sealed: the operator's command is the log's last writer until
	// shomei-ca opens it again.
	w, err := writeWitness(ctx, c.cfg.Witness, c.cfg.Signer, old.Counter+1, cp, true)
	if err != nil {
		return nil, err
	}
	c.witness = w
	c.cfg.Log.Warn("audit log rollback accepted: the HSM's witness moved back", "actor", actor, "witnessed_seq", old.Seq(), "now_seq", seq)
	return old, nil
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
		due := seq > signed && (seq-signed >= uint64(c.cfg.Every) || c.cfg.Now().Sub(lastAt) >= c.cfg.Interval)
		if !due && !c.witnessBehind(signed) {
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
	// Witnessed is the record the HSM's witness covers; 0 when there was
	// no witness.
	Witnessed uint64
}

// Verify checks the audit log of st against the audit key's public key
// and the HSM's witness w (ReadWitness): the hash chain, every checkpoint
// (signature, the record it signed, no truncation), that the log still
// holds the record the HSM witnessed (else it was rewritten) and a
// checkpoint at or past it (else it was truncated or rolled back, a
// *RollbackError, returned only when all else verifies, certificates
// included), and every certificate's state against the log. pub may
// be nil when the HSM holds no audit key: then any checkpoint is an error.
// w is nil when the HSM holds no witness yet. The unsigned tail is
// reported, not judged: the caller decides.
func Verify(st *store.Store, pub crypto.PublicKey, w *Witness) (*Report, error) {
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
	var rolledBack error
	if w != nil {
		r.Witnessed = w.Seq()
		rolledBack = checkWitnessed(st, w, status.Records, status.Signed)
		if rolledBack != nil && !errors.Is(rolledBack, ErrRolledBack) {
			return r, rolledBack // rewritten
		}
	}
	r.Certificates, err = st.ReconcileAudit()
	if err == nil {
		err = rolledBack
	}
	return r, err
}
