package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca"
	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/ca/serial"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/testenv"
)

// templateHolder is the holder whose certificates, issued by the CA, the
// preload copies.
const templateHolder = "SCALE-TEMPLATE"

// preloadHolder is the id of the i-th preloaded holder.
func preloadHolder(i int) string { return fmt.Sprintf("SCALE-PRE-%d", i) }

// preloadActor is the actor of the preloaded certificates' audit records.
const preloadActor = "shomei-bench scale preload"

// preloadJob is one preload: holders from … from+n-1 of the store of the
// configuration conf, each given an AUTH and a SIGN certificate.
type preloadJob struct {
	conf     string
	from, n  int
	workers  int
	log      *slog.Logger
	progress time.Duration // how often to log progress
}

// preload writes the job's synthetic issuances with the CA stopped. Each
// holder's two certificates are reserved and completed as the CA does
// (store.Reserve, then store.Complete with the certificates and their
// audit records, ca.IssuanceRecord), by job.workers goroutines at once so
// that the store's group commit batches them. Each certificate is a copy of
// the template holder's of its profile with a new serial (spliced into its
// TBS and DER, so that both stay well formed and the TBS matches, as
// Complete checks), holder and key hash; its signature therefore does not
// verify, which nothing in the CA checks of a stored certificate. The
// audit log is opened through the HSM first (audit.Checkpointer.Open: a
// bbolt CA sealed it at its stop) and ends in a signed checkpoint, sealed
// on bbolt and left open on PostgreSQL, as the CA's own stop leaves it,
// so that the CA starts on it.
func preload(ctx context.Context, job preloadJob) error {
	cfg, err := config.Load(job.conf)
	if err != nil {
		return err
	}
	st, err := cfg.Store.Open(store.Options{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := cfg.OpenHSM()
	if err != nil {
		return err
	}
	defer tok.Close()
	tmpl, err := loadTemplates(st)
	if err != nil {
		return err
	}
	key, err := audit.Key(ctx, tok, false, job.log)
	if err != nil {
		return err
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerConfig{Store: st, Signer: key, Witness: tok, Log: job.log})
	if err != nil {
		return err
	}
	if err := cp.Open(ctx); err != nil {
		return err
	}

	// The first worker to fail stops the others; its error (or ctx's) is
	// work's cause.
	work, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range job.workers {
		wg.Go(func() {
			for work.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= job.n {
					return
				}
				if err := preloadHolderPair(st, tmpl, preloadHolder(job.from+i)); err != nil {
					fail(err)
					return
				}
				done.Add(1)
			}
		})
	}
	began := time.Now()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(job.progress)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			n := done.Load()
			job.log.Info("preloading", "holders", n, "of", job.n, "per_s", int(float64(n)/time.Since(began).Seconds()))
		}
	}
	if err := context.Cause(work); err != nil {
		return err
	}
	// A signed checkpoint over the preload, and the log left as the CA's
	// own clean stop leaves it: sealed there on bbolt; open on a shared
	// store (PostgreSQL), whose CA processes never seal it
	// (cmd/shomei-ca checkpointer.stop).
	if st.Shared() {
		return cp.CloseOpen(ctx)
	}
	return cp.Close(ctx)
}

// templates are the template holder's certificates by profile.
type templates map[storev1.Profile]*storev1.Certificate

// loadTemplates reads the template holder's issued certificates, one of
// each profile, and checks that each one's serial can be spliced: it
// occurs once in its TBS and once in its DER.
func loadTemplates(st *store.Store) (templates, error) {
	recs, err := st.HolderCertificates(testenv.Kiyose().Code, templateHolder)
	if err != nil {
		return nil, err
	}
	t := templates{}
	for _, r := range recs {
		if r.State == storev1.CertState_CERT_STATE_ISSUED {
			t[r.Profile] = r
		}
	}
	for _, p := range []storev1.Profile{storev1.Profile_PROFILE_AUTH, storev1.Profile_PROFILE_SIGN} {
		r := t[p]
		switch {
		case r == nil:
			return nil, fmt.Errorf("the template holder %s has no issued %s certificate", templateHolder, p)
		case len(r.Serial) != serialLen:
			return nil, fmt.Errorf("template %s certificate: serial of %d bytes, want %d", p, len(r.Serial), serialLen)
		case bytes.Count(r.TbsDer, r.Serial) != 1 || bytes.Count(r.Der, r.Serial) != 1:
			return nil, fmt.Errorf("template %s certificate: its serial does not occur exactly once in its TBS and DER", p)
		}
	}
	return t, nil
}

// serialLen is the length of the CA's serials (ca/serial.New).
const serialLen = 16

// preloadHolderPair reserves and completes one holder's AUTH and SIGN
// certificates, copies of the templates.
func preloadHolderPair(st *store.Store, tmpl templates, holder string) error {
	now := time.Now()
	var recs []*storev1.Certificate
	done := store.Completion{DER: map[string][]byte{}, Now: now}
	for _, p := range []storev1.Profile{storev1.Profile_PROFILE_AUTH, storev1.Profile_PROFILE_SIGN} {
		t := tmpl[p]
		sn, err := serial.New()
		if err != nil {
			return err
		}
		sb := sn.Bytes()
		if len(sb) != serialLen {
			return errors.New("serial.New made a serial of another length than the templates'")
		}
		keyHash := make([]byte, 32)
		rand.Read(keyHash)
		rec := &storev1.Certificate{
			Serial: sb, Profile: t.Profile, IssuerGeneration: t.IssuerGeneration, MunicipalityCode: t.MunicipalityCode,
			HolderId: holder, State: storev1.CertState_CERT_STATE_PENDING, TbsDer: bytes.Replace(t.TbsDer, t.Serial, sb, 1),
			NotBefore: t.NotBefore, NotAfter: t.NotAfter, ExpiryDate: t.ExpiryDate, ExpiryReason: t.ExpiryReason,
			PublicKeySha256: keyHash, CrlPartition: t.CrlPartition,
		}
		recs = append(recs, rec)
		done.DER[string(sb)] = bytes.Replace(t.Der, t.Serial, sb, 1)
		done.Audit = append(done.Audit, ca.IssuanceRecord(preloadActor, now,
			ca.Issuance{Operation: "issue", Applicant: ca.ApplicantSelf}, rec))
	}
	// The copies share their template's CRL partition (its URL is in the
	// TBS): the largest shard size lets one partition take up to a million
	// of them (2 M preloaded certificates, AUTH and SIGN).
	if err := st.Reserve(store.Reservation{Certs: recs, Now: now, CRLShardSize: store.MaxCRLShardSize}); err != nil {
		return fmt.Errorf("preload %s: %w", holder, err)
	}
	if err := st.Complete(done); err != nil {
		return fmt.Errorf("preload %s: %w", holder, err)
	}
	return nil
}

// countStored opens the store of conf (the CA stopped) and counts its
// records.
func countStored(conf string) (store.Counts, error) {
	cfg, err := config.Load(conf)
	if err != nil {
		return store.Counts{}, err
	}
	st, err := cfg.Store.Open(store.Options{Timeout: 10 * time.Second})
	if err != nil {
		return store.Counts{}, err
	}
	defer st.Close()
	return st.Count()
}
