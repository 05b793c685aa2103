package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	auditlog "github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// TestAttackAuditRewrite is an insider with the store file, and the CA
// stopped, covering tracks (R-K3). Before signed checkpoints and
// reconciliation, each of these verified as intact: editing a record and
// recomputing the hash chain, dropping the tail of the log, and
// un-revoking a certificate in the certificate bucket (OCSP then said
// good), and (found later) unblocking a compromised key or a revoked
// responder's key so that it could be certified again. Now `shomeictl audit verify` checks the chain against checkpoints
// signed by the audit key in the HSM, and every certificate's state
// against the log, and names what does not hold.
func TestAttackAuditRewrite(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-audit", "")
	ca := startCA(t, config)
	ctx := context.Background()
	client := ca.client(t)
	sign, auth := issuePair(t, client, "AUDIT-1")
	revoked := sign.Serial
	if _, err := client.Revoke(ctx, &cav1.RevokeRequest{Serial: revoked, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	// A refused call is audited: caller, method, code, rule, field; never
	// the request's content.
	refused := holder("AUDIT-REFUSED")
	_, err := client.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: refused,
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: "2000-01-01"},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: []byte("not a CSR")}}})
	if err == nil {
		t.Fatal("a malformed Issue was accepted")
	}
	// The operator lists the responder certificates (the CA's own two)
	// and revokes one, through the running CA: audited as theirs.
	operator := []string{"--ca", ca.grpc, "--operator", "alice"}
	responders, err := shomeictl(config, append([]string{"responders", "list"}, operator...)...)
	rows := strings.Split(strings.TrimSpace(responders), "\n")
	if err != nil || len(rows) != 3 || !strings.Contains(rows[1], "(the CA)") || !strings.Contains(rows[1], "ISSUED") {
		t.Fatalf("responders list: %v\n%s", err, responders)
	}
	serial := strings.Fields(rows[1])[0]
	if got, err := shomeictl(config, append([]string{"responders", "revoke", serial}, operator...)...); err != nil || !strings.Contains(got, "never certified again") {
		t.Fatalf("responders revoke: %v\n%s", err, got)
	}
	ca.stop(t) // a clean stop signs a checkpoint of the whole log

	list, err := shomeictl(config, "audit", "export", "--offline")
	if err != nil || !strings.Contains(list, `"action":"request.refused","fields":[{"key":"method","value":"/shomei.ca.v1.CertificateAuthority/Issue"},{"key":"code","value":"InvalidArgument"}`) {
		t.Errorf("the refused Issue is not in the audit log: %v\n%s", err, list)
	}
	for _, personal := range []string{refused.HolderId, refused.Surname, refused.Address, refused.DateOfBirth} {
		if strings.Contains(list, personal) {
			t.Errorf("the audit log carries personal data %q", personal)
		}
	}
	if !strings.Contains(list, `"actor":"local:alice","action":"ocsp.responder.revoke","fields":[{"key":"serial","value":"`) || !strings.Contains(list, serial) {
		t.Errorf("the responder revocation is not audited as alice's:\n%s", list)
	}
	if got, err := shomeictl(config, "audit", "verify", "--offline"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("audit verify after revoking a responder: %v\n%s", err, got)
	}

	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, tx *bolt.Tx)
		want   string // in verify's output
	}{
		{"a record edited and the chain recomputed", func(t *testing.T, tx *bolt.Tx) {
			editAudit(t, tx, func(r *storev1.AuditRecord) {
				if r.Action == "certificate.revoke" {
					r.Actor = "someone-else"
				}
			})
		}, "rewritten"},
		{"the tail dropped", func(t *testing.T, tx *bolt.Tx) {
			dropAuditTail(t, tx, 2)
		}, "truncated"},
		{"a certificate un-revoked", func(t *testing.T, tx *bolt.Tx) {
			serial, _ := hex.DecodeString(revoked)
			b := tx.Bucket([]byte("certs"))
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(b.Get(serial), rec); err != nil {
				t.Fatal(err)
			}
			rec.Revocation = nil
			put(t, b, serial, rec)
		}, strings.TrimLeft(revoked, "0")},
		// The key-compromise revocation blocked the key (R-V8); deleting
		// it from the blocked bucket let the key be certified again,
		// and verify said intact.
		{"a compromised key unblocked", func(t *testing.T, tx *bolt.Tx) {
			serial, _ := hex.DecodeString(revoked)
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(tx.Bucket([]byte("certs")).Get(serial), rec); err != nil {
				t.Fatal(err)
			}
			if err := tx.Bucket([]byte("blocked")).Delete(rec.PublicKeySha256); err != nil {
				t.Fatal(err)
			}
		}, "unblocked behind the CA's back"},
		{"a revoked responder key allowed again", func(t *testing.T, tx *bolt.Tx) {
			b := tx.Bucket([]byte("responder_revoked_keys"))
			k, _ := b.Cursor().First()
			if k == nil {
				t.Fatal("no revoked responder key to delete")
			}
			if err := b.Delete(k); err != nil {
				t.Fatal(err)
			}
		}, "unblocked behind the CA's back"},
		// Events find a holder's certificates through the holder index:
		// with the entry of the good AUTH certificate removed, a death
		// report applied and left it good.
		{"a certificate removed from its holder's index", func(t *testing.T, tx *bolt.Tx) {
			deleteIndexOf(t, tx, auth.Serial, func(rec *storev1.Certificate) (string, []byte) {
				return "holders", bytes.Join([][]byte{[]byte(rec.MunicipalityCode), []byte(rec.HolderId), {byte(rec.Profile)}}, []byte{0})
			})
		}, "missing from its holder's index"},
		{"a used key freed", func(t *testing.T, tx *bolt.Tx) {
			deleteIndexOf(t, tx, auth.Serial, func(rec *storev1.Certificate) (string, []byte) {
				return "keys", rec.PublicKeySha256
			})
		}, "freed behind the CA's back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyConfig := copyStore(t, dir, tc.tamper)
			got, err := shomeictl(copyConfig, "audit", "verify", "--offline")
			t.Logf("shomeictl audit verify: %s", got)
			if err == nil || !strings.Contains(got, tc.want) {
				t.Errorf("audit verify after %s: %v, want a failure naming %q\n%s", tc.name, err, tc.want, got)
			}
			// Nor does the CA start on it: it would sign a checkpoint over
			// the tampering and serve the un-revoked certificate as good.
			run, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			log, err := exec.CommandContext(run, filepath.Join(binDir, "shomei-ca"), "--config", copyConfig).CombinedOutput()
			if err == nil || run.Err() != nil || !strings.Contains(string(log), "does not verify") {
				t.Errorf("shomei-ca on the tampered store: %v (%v)\n%s", err, run.Err(), log)
			}
		})
	}
}

// deleteIndexOf deletes from bucket the keys starting with the prefix
// index gives for the certificate serialHex.
func deleteIndexOf(t *testing.T, tx *bolt.Tx, serialHex string, index func(*storev1.Certificate) (bucket string, prefix []byte)) {
	t.Helper()
	serial, _ := hex.DecodeString(serialHex)
	rec := new(storev1.Certificate)
	if err := proto.Unmarshal(tx.Bucket([]byte("certs")).Get(serial), rec); err != nil {
		t.Fatal(err)
	}
	name, prefix := index(rec)
	b := tx.Bucket([]byte(name))
	var del [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if bytes.HasSuffix(k, serial) || name == "keys" {
			del = append(del, bytes.Clone(k))
		}
	}
	if len(del) == 0 {
		t.Fatalf("no %s entry of %s", name, serialHex)
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
}

// shomeictl runs shomeictl with config and returns its combined output.
func shomeictl(config string, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "shomeictl"), append([]string{"--config", config}, args...)...).CombinedOutput()
	return string(out), err
}

// copyStore copies dir's store and configuration (token e2e-audit) into a
// new directory, tampers with the copy and returns its configuration.
func copyStore(t *testing.T, dir string, tamper func(*testing.T, *bolt.Tx)) string {
	t.Helper()
	return copyStoreOn(t, dir, "e2e-audit", tamper)
}

// copyStoreOn is copyStore for a store whose CA uses token label.
func copyStoreOn(t *testing.T, dir, label string, tamper func(*testing.T, *bolt.Tx)) string {
	t.Helper()
	to := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir, "shomei.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "shomei.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, to, label, "")
	db, err := bolt.Open(filepath.Join(to, "shomei.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { tamper(t, tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return config
}

func put(t *testing.T, b *bolt.Bucket, key []byte, m proto.Message) {
	t.Helper()
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(key, v); err != nil {
		t.Fatal(err)
	}
}

// editAudit changes records with edit and rewrites the hash chain and the
// head in meta, as the store would have written them.
func editAudit(t *testing.T, tx *bolt.Tx, edit func(*storev1.AuditRecord)) {
	t.Helper()
	b := tx.Bucket([]byte("audit"))
	var recs []*storev1.AuditRecord
	b.ForEach(func(k, v []byte) error {
		r := new(storev1.AuditRecord)
		if err := proto.Unmarshal(v, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
		return nil
	})
	var prev []byte
	for _, r := range recs {
		edit(r)
		r.PrevHash = prev
		v, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, r.Seq), v); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(v)
		prev = sum[:]
	}
	head := binary.BigEndian.AppendUint64(nil, recs[len(recs)-1].Seq)
	if err := tx.Bucket([]byte("meta")).Put([]byte("audit_head"), append(head, prev...)); err != nil {
		t.Fatal(err)
	}
}

// dropAuditTail removes the last n records and points the head in meta at
// the one before them.
func dropAuditTail(t *testing.T, tx *bolt.Tx, n int) {
	t.Helper()
	b := tx.Bucket([]byte("audit"))
	c := b.Cursor()
	k, _ := c.Last()
	for range n {
		if err := b.Delete(bytes.Clone(k)); err != nil {
			t.Fatal(err)
		}
		k, _ = b.Cursor().Last()
	}
	k, v := b.Cursor().Last()
	sum := sha256.Sum256(v)
	if err := tx.Bucket([]byte("meta")).Put([]byte("audit_head"), append(bytes.Clone(k), sum[:]...)); err != nil {
		t.Fatal(err)
	}
}

// TestAttackAuditTruncation is the insider of TestAttackAuditRewrite, with
// the store file but not the HSM PIN, going one step further: deleting the
// tail of the audit log together with every checkpoint after some point.
// What remains is a shorter log, validly chained and signed, which verified
// as intact before the CA kept a witness of its last checkpoint in the HSM
// (ca/audit). Now `shomeictl audit verify` and `shomei-ca` refuse it,
// naming the record the HSM witnessed and the log's last checkpoint. A
// store restored from a backup looks the same; the operator accepts it
// explicitly, and that is audited. A store from before the witness gets
// one at the CA's next start.
func TestAttackAuditTruncation(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-audit-trunc", "")
	ctx := context.Background()
	ca := startCA(t, config)
	client := ca.client(t)
	if _, err := client.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("TRUNC-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))}},
	}); err != nil {
		t.Fatal(err)
	}
	ca.stop(t)
	// The operator's backup, and how far its log goes.
	backup := t.TempDir()
	copyFile(t, filepath.Join(dir, "shomei.db"), filepath.Join(backup, "shomei.db"))
	kept := auditLength(t, filepath.Join(dir, "shomei.db"))

	// The CA runs on: what happens now is what the insider wants gone
	// (here, refused requests, which only the audit log records).
	ca = startCA(t, config)
	client = ca.client(t)
	for _, id := range []string{"TRUNC-HIDDEN-1", "TRUNC-HIDDEN-2"} {
		if _, err := client.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: holder(id),
			Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: "2000-01-01"},
			Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: []byte("not a CSR")}}}); err == nil {
			t.Fatal("a malformed Issue was accepted")
		}
	}
	ca.stop(t)
	full := auditLength(t, filepath.Join(dir, "shomei.db"))
	if full <= kept {
		t.Fatalf("the log did not grow (%d records, %d before)", full, kept)
	}
	if got, err := shomeictl(config, "audit", "verify", "--offline"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("audit verify of the untouched store: %v\n%s", err, got)
	}
	witnessed := fmt.Sprintf("record %d", full)
	older := fmt.Sprintf("record %d", kept)

	startFails := func(t *testing.T, config string, want ...string) {
		t.Helper()
		run, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(run, filepath.Join(binDir, "shomei-ca"), "--config", config).CombinedOutput()
		if err == nil || run.Err() != nil || !strings.Contains(string(out), "does not verify") {
			t.Errorf("shomei-ca on the tampered store: %v (%v)\n%s", err, run.Err(), out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("shomei-ca's refusal does not name %q:\n%s", w, out)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, tx *bolt.Tx)
		want   []string
	}{
		{"the tail and its checkpoints deleted", func(t *testing.T, tx *bolt.Tx) {
			truncateAudit(t, tx, kept)
		}, []string{"truncated", witnessed, older}},
		{"the tail deleted and rewritten past the witness", func(t *testing.T, tx *bolt.Tx) {
			truncateAudit(t, tx, kept)
			appendForged(t, tx, full-kept)
		}, []string{"rewritten", witnessed}},
		// The CA stopped cleanly and sealed the log in the HSM's witness:
		// records chained onto it while it is stopped, as the store itself
		// would write them, were not written through the HSM.
		{"records appended after the clean stop", func(t *testing.T, tx *bolt.Tx) {
			appendForged(t, tx, 2)
		}, []string{"sealed", witnessed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyConfig := copyStoreOn(t, dir, "e2e-audit-trunc", tc.tamper)
			got, err := shomeictl(copyConfig, "audit", "verify", "--offline", "--accept-unsigned-tail")
			t.Logf("shomeictl audit verify: %s", got)
			if err == nil {
				t.Errorf("audit verify after %s: accepted", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("audit verify's refusal does not name %q", w)
				}
			}
			startFails(t, copyConfig, tc.want...)
		})
	}

	// A store from before the witness: the HSM holds none. Verify says
	// so, and the CA's next start makes it.
	t.Run("an older store, with no witness yet", func(t *testing.T) {
		deleteWitness(t, "e2e-audit-trunc")
		got, err := shomeictl(config, "audit", "verify", "--offline")
		if err != nil || !strings.Contains(got, "intact") || !strings.Contains(got, "no witness") {
			t.Fatalf("audit verify with no witness: %v\n%s", err, got)
		}
		ca := startCA(t, config)
		ca.stop(t)
		if !strings.Contains(ca.Log.String(), "creating it") {
			t.Errorf("shomei-ca did not say it created the witness:\n%s", ca.Log)
		}
		full = auditLength(t, filepath.Join(dir, "shomei.db"))
		witnessed = fmt.Sprintf("record %d", full)
		if got, err := shomeictl(config, "audit", "verify", "--offline"); err != nil || !strings.Contains(got, "the HSM witnessed "+witnessed) {
			t.Fatalf("audit verify after the upgrade: %v\n%s", err, got)
		}
	})

	// The backup restored: an older log, legitimately. Refused until the
	// operator accepts the rollback, which is audited; then the CA starts.
	t.Run("a backup restored", func(t *testing.T) {
		restored := copyStoreOn(t, backup, "e2e-audit-trunc", func(*testing.T, *bolt.Tx) {})
		got, err := shomeictl(restored, "audit", "verify", "--offline")
		if err == nil || !strings.Contains(got, witnessed) || !strings.Contains(got, "--accept-rollback") {
			t.Fatalf("audit verify of the restored backup: %v, want a refusal naming %s and --accept-rollback\n%s", err, witnessed, got)
		}
		startFails(t, restored, witnessed)
		got, err = shomeictl(restored, "audit", "verify", "--offline", "--accept-rollback", "--operator", "alice")
		if err != nil || !strings.Contains(got, "rollback accepted") {
			t.Fatalf("audit verify --accept-rollback: %v\n%s", err, got)
		}
		if got, _ := shomeictl(restored, "audit", "export", "--offline"); !strings.Contains(got, `"actor":"operator:alice","action":"audit.rollback.accept","fields":[{"key":"witnessed_seq","value":"`+fmt.Sprint(full)+`"}`) {
			t.Errorf("the accepted rollback is not audited as alice's:\n%s", got)
		}
		if got, err := shomeictl(restored, "audit", "verify", "--offline"); err != nil || !strings.Contains(got, "intact") {
			t.Fatalf("audit verify after the accepted rollback: %v\n%s", err, got)
		}
		ca := startCA(t, restored)
		ca.stop(t)
		// The HSM now witnesses the restored branch: the original store,
		// which went further on the other, no longer verifies.
		if got, err := shomeictl(config, "audit", "verify", "--offline"); err == nil || !strings.Contains(got, "rewritten") {
			t.Errorf("audit verify of the abandoned branch: %v\n%s", err, got)
		}
	})
}

// deleteWitness removes the audit witness from the token, as a token
// written before the witness was.
func deleteWitness(t *testing.T, label string) {
	t.Helper()
	tok := open.Token(t, label)
	defer tok.Close()
	objs, err := tok.ReadData(context.Background(), auditlog.WitnessLabel)
	if err != nil || len(objs) == 0 {
		t.Fatalf("the token holds no witness to delete: %v", err)
	}
	for _, o := range objs {
		if err := tok.DeleteData(context.Background(), o.Label, o.Application); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// auditLength is the seq of the last audit record in the store file.
func auditLength(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n uint64
	db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket([]byte("audit")).Cursor().Last(); k != nil {
			n = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return n
}

// truncateAudit deletes the audit records and checkpoints after record
// keep and points the head in meta at it.
func truncateAudit(t *testing.T, tx *bolt.Tx, keep uint64) {
	t.Helper()
	for _, name := range []string{"audit", "audit_checkpoints"} {
		b := tx.Bucket([]byte(name))
		for k, _ := b.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) > keep; k, _ = b.Cursor().Last() {
			if err := b.Delete(bytes.Clone(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	dropAuditTail(t, tx, 0)
}

// appendForged chains n made-up records onto the log, as the store would.
func appendForged(t *testing.T, tx *bolt.Tx, n uint64) {
	t.Helper()
	b := tx.Bucket([]byte("audit"))
	k, v := b.Cursor().Last()
	seq := binary.BigEndian.Uint64(k)
	for range n {
		seq++
		sum := sha256.Sum256(v)
		var err error
		v, err = proto.MarshalOptions{Deterministic: true}.Marshal(&storev1.AuditRecord{Seq: seq, PrevHash: sum[:],
			Time: timestamppb.Now(), Actor: "shomei-ca", Action: "ca.start"})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			t.Fatal(err)
		}
	}
	dropAuditTail(t, tx, 0)
}
