package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/store/engine"
	"github.com/shomei-pki/shomei/internal/testenv/pg"
)

// The tests of this file are PostgreSQL's alone: any number of CA
// processes share one database, so the rules the store keeps inside one
// write transaction must hold across processes too.

// twoProcesses opens the store of one new PostgreSQL database twice, as
// two CA processes would.
func twoProcesses(t *testing.T) (backend, *Store, *Store) {
	t.Helper()
	be := postgresBackend(t)
	return be, openTemp(t, be), openTemp(t, be)
}

// race runs a and b at once, as nearly as goroutines can, and returns
// their errors.
func race(a, b func() error) (errA, errB error) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-start; errA = a() })
	wg.Go(func() { <-start; errB = b() })
	close(start)
	wg.Wait()
	return errA, errB
}

// TestPostgresTwoProcessesNoDoubleIssuance: two CA processes reserve
// conflicting issuances at the same moment. Exactly one succeeds and the
// other is refused for the conflict — never both (R-A4, R-P1) — and a
// card is recorded both or neither: of the loser's reservation nothing is
// stored. Each process sees what the other committed.
func TestPostgresTwoProcessesNoDoubleIssuance(t *testing.T) {
	tests := []struct {
		name string
		// certs makes the two reservations of round i.
		certs func(i int) (a, b []*storev1.Certificate)
		want  error
	}{
		{"same holder and profile", func(i int) (a, b []*storev1.Certificate) {
			h := fmt.Sprintf("h-same-%d", i)
			return []*storev1.Certificate{pending(h, sign)}, []*storev1.Certificate{pending(h, sign)}
		}, ErrDoubleIssuance},
		{"a card against one of its certificates", func(i int) (a, b []*storev1.Certificate) {
			h := fmt.Sprintf("h-card-%d", i)
			return []*storev1.Certificate{pending(h, sign), pending(h, auth)}, []*storev1.Certificate{pending(h, auth)}
		}, ErrDoubleIssuance},
		{"same serial", func(i int) (a, b []*storev1.Certificate) {
			x, y := pending(fmt.Sprintf("h-serial-a-%d", i), sign), pending(fmt.Sprintf("h-serial-b-%d", i), sign)
			y.Serial = x.Serial
			return []*storev1.Certificate{x}, []*storev1.Certificate{y}
		}, ErrSerialTaken},
		{"same key", func(i int) (a, b []*storev1.Certificate) {
			x, y := pending(fmt.Sprintf("h-key-a-%d", i), auth), pending(fmt.Sprintf("h-key-b-%d", i), auth)
			y.PublicKeySha256 = x.PublicKeySha256
			return []*storev1.Certificate{x}, []*storev1.Certificate{y}
		}, ErrKeyUsed},
	}
	_, pa, pb := twoProcesses(t)
	const rounds = 8
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wins := map[string]int{}
			for i := range rounds {
				a, b := tt.certs(i)
				errA, errB := race(
					func() error { return pa.Reserve(Reservation{Certs: a, Now: t0}) },
					func() error { return pb.Reserve(Reservation{Certs: b, Now: t0}) })
				var won, lost []*storev1.Certificate
				winner, loser := pa, pb
				switch {
				case errA == nil && errors.Is(errB, tt.want):
					won, lost = a, b
					wins["a"]++
				case errB == nil && errors.Is(errA, tt.want):
					won, lost, winner, loser = b, a, pb, pa
					wins["b"]++
				default:
					t.Fatalf("round %d: process A: %v; process B: %v; want exactly one refused with %v", i, errA, errB, tt.want)
				}
				// Nothing of the loser's reservation is stored, as either
				// process sees it (its serial may be the winner's).
				for _, rec := range lost {
					if slices.ContainsFunc(won, func(w *storev1.Certificate) bool { return bytes.Equal(w.Serial, rec.Serial) }) {
						continue
					}
					for _, p := range []*Store{pa, pb} {
						if _, err := p.Certificate(rec.Serial); !errors.Is(err, ErrNotFound) {
							t.Errorf("round %d: the refused reservation's %x was stored: %v", i, rec.Serial, err)
						}
					}
				}
				// The winner completes; the loser sees every certificate
				// of the card issued.
				c := Completion{DER: map[string][]byte{}, Now: t0}
				for _, rec := range won {
					c.DER[string(rec.Serial)] = fakeDER(rec.TbsDer)
				}
				if err := winner.Complete(c); err != nil {
					t.Fatal(err)
				}
				for _, rec := range won {
					got, err := loser.Certificate(rec.Serial)
					if err != nil || got.State != storev1.CertState_CERT_STATE_ISSUED || got.HolderId != rec.HolderId {
						t.Errorf("round %d: the other process reads %x as %v, %v; want ISSUED to %s", i, rec.Serial, got.GetState(), err, rec.HolderId)
					}
				}
			}
			t.Logf("wins: %v", wins)
		})
	}
	if _, err := pa.VerifyAudit(); err != nil {
		t.Errorf("audit: %v", err)
	}
}

// TestPostgresTwoProcessesAuditChain (R-K3): two CA processes append to
// the audit log at once, each from several goroutines, directly and with
// issuances and revocations. The chain stays one unbroken chain: every
// record is stored once, numbered 1 … n without gaps, each linked to the
// one before, and both processes verify it and agree on its head; the
// status-change log's revisions are as unbroken.
func TestPostgresTwoProcessesAuditChain(t *testing.T) {
	_, pa, pb := twoProcesses(t)
	const (
		writers = 4
		each    = 10
	)
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*each)
	for pi, p := range []*Store{pa, pb} {
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					action := fmt.Sprintf("p%d.w%d.%d", pi, w, i)
					var err error
					switch i % 3 {
					case 0, 1:
						err = p.AppendAudit(testAudit(action))
					case 2:
						// An issuance and its revocation: audit records
						// written inside the store's own transactions.
						rec := pending("h-"+action, sign)
						if err = p.Reserve(Reservation{Certs: []*storev1.Certificate{rec}, Now: t0}); err != nil {
							break
						}
						if err = p.Complete(Completion{DER: map[string][]byte{string(rec.Serial): fakeDER(rec.TbsDer)}, Now: t0,
							Audit: []*storev1.AuditRecord{testAudit(action)}}); err != nil {
							break
						}
						_, err = p.Revoke(RevokeRequest{Serials: [][]byte{rec.Serial}, Reason: ReasonKeyCompromise, InvalidityDate: t0,
							Now: t0, Actor: "test", Cause: action})
					}
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Every write's records, once each: 2 per issuance-and-revocation.
	issuances := 2 * writers * (each / 3)
	want := 2*writers*each - issuances + 2*issuances
	for name, p := range map[string]*Store{"A": pa, "B": pb} {
		if n, err := p.VerifyAudit(); err != nil || n != want {
			t.Errorf("process %s: VerifyAudit = %d, %v; want %d, nil", name, n, err, want)
		}
	}
	seqA, hashA, errA := pa.AuditHead()
	seqB, hashB, errB := pb.AuditHead()
	if errA != nil || errB != nil || seqA != uint64(want) || seqA != seqB || hashA != hashB {
		t.Errorf("heads: A %d %x (%v), B %d %x (%v); want both at %d", seqA, hashA, errA, seqB, hashB, errB, want)
	}
	seen := map[string]int{}
	var seq uint64
	if err := pb.AuditRecords(func(r *storev1.AuditRecord) error {
		seq++
		if r.Seq != seq {
			return fmt.Errorf("record %d where %d was due", r.Seq, seq)
		}
		seen[r.Action]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for pi := range 2 {
		for w := range writers {
			for i := range each {
				if action := fmt.Sprintf("p%d.w%d.%d", pi, w, i); seen[action] != 1 {
					t.Errorf("record %s stored %d times, want once", action, seen[action])
				}
			}
		}
	}
	// The status-change log too (R-R4): one revision per issuance and per
	// revocation, 1 … n without gaps or repeats.
	var rev uint64
	if err := pa.Changes(0, func(ch *storev1.StatusChange) error {
		rev++
		if ch.Revision != rev {
			return fmt.Errorf("revision %d where %d was due", ch.Revision, rev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last, err := pb.Revision(); err != nil || rev != uint64(2*issuances) || last != rev {
		t.Errorf("%d changes, Revision %d (%v); want %d", rev, last, err, 2*issuances)
	}
}

// TestPostgresTwoProcessesInquiryLimit (R-A2): wrong inquiry codes guessed
// at once through two CA processes are counted together: exactly
// MaxInquiryAttempts are judged, the rest are refused as locked.
func TestPostgresTwoProcessesInquiryLimit(t *testing.T) {
	_, pa, pb := twoProcesses(t)
	code := "K7M2P-Q9R4T"
	sum := sha256.Sum256([]byte(code))
	if err := pa.OpenInquiry(&storev1.Inquiry{Id: "inq", MunicipalityCode: "13221", HolderId: "holder", CodeSha256: sum[:],
		OpenedAt: timestamppb.New(t0), ExpiresAt: timestamppb.New(t0.AddDate(0, 0, 30))}); err != nil {
		t.Fatal(err)
	}
	const guesses = 4 * MaxInquiryAttempts
	errs := make(chan error, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		p := []*Store{pa, pb}[i%2]
		wg.Go(func() {
			errs <- p.Reserve(Reservation{Certs: []*storev1.Certificate{pending("holder", auth)}, Now: t0, InquiryID: "inq",
				InquiryCode: fmt.Sprintf("GUESS-%d", i)})
		})
	}
	wg.Wait()
	close(errs)
	var wrong, locked int
	for err := range errs {
		switch {
		case errors.Is(err, ErrInquiryWrongCode):
			wrong++
		case errors.Is(err, ErrInquiryLocked):
			locked++
		default:
			t.Errorf("guess: %v", err)
		}
	}
	inq, err := pb.Inquiry("inq")
	if err != nil {
		t.Fatal(err)
	}
	if wrong != MaxInquiryAttempts || locked != guesses-MaxInquiryAttempts || inq.GetFailedAttempts() != MaxInquiryAttempts {
		t.Errorf("%d guesses through two processes: %d judged wrong, %d locked, %d recorded; want %d, %d, %d",
			guesses, wrong, locked, inq.GetFailedAttempts(), MaxInquiryAttempts, guesses-MaxInquiryAttempts, MaxInquiryAttempts)
	}
	if err := pa.Reserve(Reservation{Certs: []*storev1.Certificate{pending("holder", auth)}, Now: t0, InquiryID: "inq",
		InquiryCode: code}); !errors.Is(err, ErrInquiryLocked) {
		t.Errorf("the right code after the limit: %v, want ErrInquiryLocked", err)
	}
}

// TestPostgresRows: the store's records are rows of PostgreSQL tables, as
// psql — a client nobody here wrote — sees them: one table per bucket,
// keyed by the store's keys, at the schema version of the migrations. An
// audit record deleted with psql, while the CA runs, is found at once and
// the log is not extended past it (R-K3).
func TestPostgresRows(t *testing.T) {
	be := postgresBackend(t)
	s := openTemp(t, be)
	initTest(t, s)
	var serials []string
	for i := range 3 {
		a, b := pending(fmt.Sprintf("h%d", i), sign), pending(fmt.Sprintf("h%d", i), auth)
		issueAudited(t, s, Reservation{Certs: []*storev1.Certificate{a, b}, Now: t0})
		serials = append(serials, hex.EncodeToString(a.Serial), hex.EncodeToString(b.Serial))
	}
	slices.Sort(serials)
	c, err := s.Count()
	if err != nil {
		t.Fatal(err)
	}
	cluster, db := pg.SharedCluster(t), be.database(t)
	psql := func(sql string) string {
		t.Helper()
		out, err := cluster.Psql(db, sql)
		if err != nil {
			t.Fatalf("psql %q: %v\n%s", sql, err, out)
		}
		return out
	}
	for _, q := range []struct{ sql, want string }{
		{`SELECT count(*) FROM kv_certs`, fmt.Sprint(len(serials))},
		{`SELECT count(*) FROM kv_certs`, fmt.Sprint(c.Certificates)},
		{`SELECT count(*) FROM kv_issuers`, "2"},
		{`SELECT count(*) FROM kv_audit`, fmt.Sprint(c.AuditRecords)},
		{`SELECT string_agg(encode(k, 'hex'), ',' ORDER BY k) FROM kv_certs`, strings.Join(serials, ",")},
		{`SELECT encode(v, 'hex') FROM kv_meta WHERE k = 'schema_version'::bytea`, "00000001"},
		{`SELECT max(version) FROM shomei_migrations`, fmt.Sprint(engine.SchemaVersion())},
	} {
		if got := psql(q.sql); got != q.want {
			t.Errorf("psql %q = %q, want %q", q.sql, got, q.want)
		}
	}

	last := c.AuditRecords
	psql(`DELETE FROM kv_audit WHERE k = (SELECT k FROM kv_audit ORDER BY k DESC LIMIT 1)`)
	_, err = s.VerifyAudit()
	wantIn := fmt.Sprintf("record %d is missing; the head in meta is record %d", last, last)
	if tamper, ok := errors.AsType[*AuditTamperedError](err); !ok || tamper.Seq != uint64(last) || !strings.Contains(err.Error(), wantIn) {
		t.Errorf("VerifyAudit after a psql DELETE: %v, want ErrAuditTampered mentioning %q", err, wantIn)
	}
	if err := s.AppendAudit(testAudit("after")); !errors.Is(err, ErrAuditTampered) {
		t.Errorf("AppendAudit after a psql DELETE: %v, want ErrAuditTampered", err)
	}
	if got := psql(`SELECT count(*) FROM kv_audit`); got != fmt.Sprint(last-1) {
		t.Errorf("the refused append left %s audit rows, want %d", got, last-1)
	}
}

// TestPostgresNewerSchema: a database migrated by newer code — it has a
// migration this code does not know — is refused with ErrSchemaVersion,
// and the refused open changes nothing (the store's rule: read only by
// code of its schema version).
func TestPostgresNewerSchema(t *testing.T) {
	be := postgresBackend(t)
	s := openTest(t, be)
	if err := s.AppendAudit(testAudit("ceremony.start")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cluster, db := pg.SharedCluster(t), be.database(t)
	next := engine.SchemaVersion() + 1
	if out, err := cluster.Psql(db, fmt.Sprintf(`INSERT INTO shomei_migrations (version, name) VALUES (%d, '%04d_future.sql')`, next, next)); err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}

	s, err := be.open(t, Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a database of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer Shomei") {
		t.Errorf("Open: %v, want it to say the database is a newer Shomei's", err)
	}
	if !errors.Is(err, ErrSchemaVersion) {
		t.Errorf("Open: %v, want ErrSchemaVersion", err)
	}
	s, again := be.open(t, Options{})
	if again == nil {
		s.Close()
	}
	if again == nil || again.Error() != err.Error() {
		t.Errorf("second Open: %v, want %v", again, err)
	}
	if out, err := cluster.Psql(db, `SELECT count(*) FROM kv_audit`); err != nil || out != "1" {
		t.Errorf("audit rows after the refused opens: %q, %v; want 1", out, err)
	}
}

// TestOpenPostgresRefused: a DSN that does not parse, or names a server
// that is not there, is refused, and the error never repeats the password
// (it ends up in logs).
func TestOpenPostgresRefused(t *testing.T) {
	const password = "hunter2-secret"
	tests := []struct {
		name, dsn string
	}{
		{"does not parse", "host=/tmp port=notaport password=" + password},
		{"no server there", "host=" + t.TempDir() + " dbname=shomei user=shomei password=" + password + " connect_timeout=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			s, err := OpenPostgres(tt.dsn, Options{}, engine.PostgresOptions{})
			if err == nil {
				s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error repeats the password: %v", err)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("gave up after %s", d)
			}
		})
	}
}

// TestPostgresOpenTogether: CA processes started together on a new
// database all open it: the migrations are applied once and the store is
// laid out once, whoever comes first, and every process then writes to
// the one store.
func TestPostgresOpenTogether(t *testing.T) {
	be := postgresBackend(t)
	const processes = 4
	stores := make([]*Store, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range processes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = be.open(t, Options{Now: func() time.Time { return testNow }})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	for i, s := range stores {
		wg.Go(func() {
			if err := s.AppendAudit(testAudit(fmt.Sprintf("start.%d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, err := stores[0].VerifyAudit(); err != nil || n != processes {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", n, err, processes)
	}
	cluster, db := pg.SharedCluster(t), be.database(t)
	for _, q := range []struct{ sql, want string }{
		{`SELECT count(*) = count(DISTINCT version) AND count(*) = max(version) FROM shomei_migrations`, "t"},
		{`SELECT max(version) FROM shomei_migrations`, fmt.Sprint(engine.SchemaVersion())},
		{`SELECT encode(v, 'hex') FROM kv_meta WHERE k = 'schema_version'::bytea`, "00000001"},
	} {
		if out, err := cluster.Psql(db, q.sql); err != nil || out != q.want {
			t.Errorf("psql %q = %q, %v; want %q", q.sql, out, err, q.want)
		}
	}
}
