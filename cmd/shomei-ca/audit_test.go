package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
)

// TestAttackAuditRewrite is an insider with the store file, and the CA
// stopped, covering tracks (R-K3). Before signed checkpoints and
// reconciliation, each of these verified as intact: editing a record and
// recomputing the hash chain, dropping the tail of the log, and
// un-revoking a certificate in the certificate bucket (OCSP then said
// good). Now `shomeictl audit verify` checks the chain against checkpoints
// signed by the audit key in the HSM, and every certificate's state
// against the log, and names what does not hold.
func TestAttackAuditRewrite(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-audit", "")
	ca := startCA(t, config)
	ctx := context.Background()
	client := ca.client(t)
	out, err := client.Issue(ctx, &cav1.IssueRequest{
		Municipality: kiyose, Holder: holder("AUDIT-1"),
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: time.Now().AddDate(8, 0, 0).Format(time.DateOnly)},
		Profiles: []*cav1.ProfileRequest{
			{Profile: cav1.Profile_PROFILE_SIGN, Csr: csr(t, rsaKey(t))},
			{Profile: cav1.Profile_PROFILE_AUTH, Csr: csr(t, rsaKey(t))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	revoked := out.Certificates[0].Serial
	if _, err := client.Revoke(ctx, &cav1.RevokeRequest{Serial: revoked, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	// A refused call is audited: caller, method, code, rule, field; never
	// the request's content.
	refused := holder("AUDIT-REFUSED")
	_, err = client.Issue(ctx, &cav1.IssueRequest{Municipality: kiyose, Holder: refused,
		Application: &cav1.Application{ApplicantKind: cav1.ApplicantKind_APPLICANT_KIND_SELF, CardExpiry: "2000-01-01"},
		Profiles:    []*cav1.ProfileRequest{{Profile: cav1.Profile_PROFILE_SIGN, Csr: []byte("not a CSR")}}})
	if err == nil {
		t.Fatal("a malformed Issue was accepted")
	}
	ca.stop(t) // a clean stop signs a checkpoint of the whole log

	list, err := shomeictl(config, "audit", "list")
	if err != nil || !strings.Contains(list, "request.refused\tmethod=/shomei.ca.v1.CertificateAuthority/Issue code=InvalidArgument") {
		t.Errorf("the refused Issue is not in the audit log: %v\n%s", err, list)
	}
	for _, personal := range []string{refused.HolderId, refused.Surname, refused.Address, refused.DateOfBirth} {
		if strings.Contains(list, personal) {
			t.Errorf("the audit log carries personal data %q", personal)
		}
	}

	if got, err := shomeictl(config, "audit", "verify"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("audit verify of the untouched store: %v\n%s", err, got)
	}

	// The operator lists the responder certificates (the CA's own two) and
	// revokes one: audited, checkpointed, reconciled.
	responders, err := shomeictl(config, "responders", "list")
	rows := strings.Split(strings.TrimSpace(responders), "\n")
	if err != nil || len(rows) != 3 || !strings.Contains(rows[1], "(the CA)") || !strings.Contains(rows[1], "ISSUED") {
		t.Fatalf("responders list: %v\n%s", err, responders)
	}
	serial := strings.Fields(rows[1])[0]
	if got, err := shomeictl(config, "responders", "revoke", "--operator", "alice", serial); err != nil || !strings.Contains(got, "never certified again") {
		t.Fatalf("responders revoke: %v\n%s", err, got)
	}
	if got, err := shomeictl(config, "audit", "verify"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("audit verify after revoking a responder: %v\n%s", err, got)
	}
	if got, _ := shomeictl(config, "audit", "list"); !strings.Contains(got, "operator:alice\tocsp.responder.revoke\tserial="+serial) {
		t.Errorf("the responder revocation is not audited as alice's:\n%s", got)
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			copyConfig := copyStore(t, dir, tc.tamper)
			got, err := shomeictl(copyConfig, "audit", "verify")
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

// shomeictl runs shomeictl with config and returns its combined output.
func shomeictl(config string, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "shomeictl"), append([]string{"--config", config}, args...)...).CombinedOutput()
	return string(out), err
}

// copyStore copies dir's store and configuration into a new directory,
// tampers with the copy and returns its configuration.
func copyStore(t *testing.T, dir string, tamper func(*testing.T, *bolt.Tx)) string {
	t.Helper()
	return copyStoreOf(t, dir, "e2e-audit", tamper)
}

// copyStoreOf is copyStore for the CA of token label.
func copyStoreOf(t *testing.T, dir, label string, tamper func(*testing.T, *bolt.Tx)) string {
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
