package main

import (
	"bytes"
	"context"
	"encoding/hex"
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
)

// TestAttackAuditRetarget is the insider of TestAttackAuditRewrite, who
// leaves the revocation alone and edits what the reconciliation did not
// compare: the CRL index entry of the revoked certificate deleted, or its
// notAfter moved into the past (the CRL is built from that index and
// leaves out expired certificates, so every later CRL omits the revoked,
// still-valid card and `openssl verify -crl_check` accepts it, while OCSP
// still says revoked); the certificate's notAfter moved into the past (the
// API calls it expired), its profile or issuer generation changed (OCSP
// answers unknown), its CRL partition, municipality or holder changed
// (another municipal system sees and answers for it). Each verified as
// intact. Now the certificate record must agree with the issuance record
// the signed audit log holds, and every revocation must be in its
// partition's CRL index as the certificate has it.
func TestAttackAuditRetarget(t *testing.T) {
	dir := t.TempDir()
	config := writeConfig(t, dir, "e2e-audit-retarget", "")
	ca := startCA(t, config)
	ctx := context.Background()
	client := ca.client(t)
	sign, _ := issuePair(t, client, "RETARGET-1")
	revoked := sign.Serial
	if _, err := client.Revoke(ctx, &cav1.RevokeRequest{Serial: revoked, Reason: cav1.RevocationReason_REVOCATION_REASON_KEY_COMPROMISE}); err != nil {
		t.Fatal(err)
	}
	ca.stop(t)
	if got, err := shomeictl(config, "audit", "verify", "--offline"); err != nil || !strings.Contains(got, "intact") {
		t.Fatalf("audit verify of the untouched store: %v\n%s", err, got)
	}
	edit := func(change func(*storev1.Certificate)) func(*testing.T, *bolt.Tx) {
		return func(t *testing.T, tx *bolt.Tx) {
			serial, _ := hex.DecodeString(revoked)
			b := tx.Bucket([]byte("certs"))
			rec := new(storev1.Certificate)
			if err := proto.Unmarshal(b.Get(serial), rec); err != nil {
				t.Fatal(err)
			}
			change(rec)
			put(t, b, serial, rec)
		}
	}
	entry := func(change func(b *bolt.Bucket, k, v []byte)) func(*testing.T, *bolt.Tx) {
		return func(t *testing.T, tx *bolt.Tx) {
			serial, _ := hex.DecodeString(revoked)
			b := tx.Bucket([]byte("crl_entries"))
			var key, value []byte
			b.ForEach(func(k, v []byte) error {
				if bytes.HasSuffix(k, serial) {
					key, value = bytes.Clone(k), bytes.Clone(v)
				}
				return nil
			})
			if key == nil {
				t.Fatal("no CRL entry of the revoked certificate")
			}
			change(b, key, value)
		}
	}
	for name, tamper := range map[string]func(*testing.T, *bolt.Tx){
		"notAfter moved into the past": edit(func(r *storev1.Certificate) {
			r.NotAfter = timestamppb.New(time.Now().Add(-time.Hour))
		}),
		"the profile changed":           edit(func(r *storev1.Certificate) { r.Profile = storev1.Profile_PROFILE_AUTH }),
		"the issuer generation changed": edit(func(r *storev1.Certificate) { r.IssuerGeneration++ }),
		"the municipality changed":      edit(func(r *storev1.Certificate) { r.MunicipalityCode = "13101" }),
		"the holder changed":            edit(func(r *storev1.Certificate) { r.HolderId = "SOMEONE-ELSE" }),
		"the CRL partition changed":     edit(func(r *storev1.Certificate) { r.CrlPartition += "x" }),
		"its CRL entry deleted": entry(func(b *bolt.Bucket, k, _ []byte) {
			if err := b.Delete(k); err != nil {
				t.Fatal(err)
			}
		}),
		"its CRL entry's notAfter moved into the past": entry(func(b *bolt.Bucket, k, v []byte) {
			e := new(storev1.Certificate)
			if err := proto.Unmarshal(v, e); err != nil {
				t.Fatal(err)
			}
			e.NotAfter = timestamppb.New(time.Now().Add(-time.Hour))
			put(t, b, k, e)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := shomeictl(copyStoreOn(t, dir, "e2e-audit-retarget", tamper), "audit", "verify", "--offline")
			if err == nil || !strings.Contains(got, strings.TrimLeft(revoked, "0")) {
				t.Errorf("audit verify after %s: %v, want a failure naming serial %s\n%s", name, err, revoked, got)
			}
		})
	}
}

// TestAttackSecretFileSymlinks: the holes in TestAttackSecretFiles' checks.
// A store file that is a symlink into a directory others may write passed
// (only the link's own directory was looked at), and a PIN or client token
// file in a directory others may write passed (only the file's mode was),
// though whoever may write the directory may replace the file: with the
// store, the certificates and the audit log; with a token file read by a
// CA running as root, a municipal client's token of their choosing. Now
// each stops the binary at start, naming the directory.
func TestAttackSecretFileSymlinks(t *testing.T) {
	setup := func(t *testing.T, extra string) (dir, conf, shared string) {
		dir = t.TempDir()
		shared = filepath.Join(dir, "shared")
		if err := os.Mkdir(shared, 0o700); err != nil {
			t.Fatal(err)
		}
		writeToken(t, dir, "kiyose.token", kiyoseToken)
		return dir, writeConfig(t, dir, "e2e-secret-dirs", extra), shared
	}
	move := func(t *testing.T, from, to string) {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	for name, make := range map[string]func(t *testing.T) (conf, shared string){
		"the store file a symlink into it": func(t *testing.T) (string, string) {
			dir, conf, shared := setup(t, "")
			if err := os.WriteFile(filepath.Join(shared, "shomei.db"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(shared, "shomei.db"), filepath.Join(dir, "shomei.db")); err != nil {
				t.Fatal(err)
			}
			return conf, shared
		},
		"the PIN file in it": func(t *testing.T) (string, string) {
			dir, conf, shared := setup(t, "")
			move(t, filepath.Join(dir, "pin"), filepath.Join(shared, "pin"))
			rewrite(t, conf, "pin_file: pin", "pin_file: shared/pin")
			return conf, shared
		},
		"the PIN file a symlink into it": func(t *testing.T) (string, string) {
			dir, conf, shared := setup(t, "")
			move(t, filepath.Join(dir, "pin"), filepath.Join(shared, "pin"))
			if err := os.Symlink(filepath.Join(shared, "pin"), filepath.Join(dir, "pin")); err != nil {
				t.Fatal(err)
			}
			return conf, shared
		},
		"a client token file in it": func(t *testing.T) (string, string) {
			dir, conf, shared := setup(t, "clients:\n  - name: kiyose\n    token_file: shared/kiyose.token\n    municipalities: [\"13221\"]\n")
			move(t, filepath.Join(dir, "kiyose.token"), filepath.Join(shared, "kiyose.token"))
			return conf, shared
		},
	} {
		t.Run(name, func(t *testing.T) {
			conf, shared := make(t)
			if err := os.Chmod(shared, 0o777); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, filepath.Join(binDir, "shomei-ca"), "--config", conf).CombinedOutput()
			if err == nil || ctx.Err() != nil {
				t.Fatalf("shomei-ca started with %s: %v\n%s", name, err, out)
			}
			if !strings.Contains(string(out), shared) || !strings.Contains(string(out), "group or others may write") {
				t.Errorf("shomei-ca's refusal does not name %s:\n%s", shared, out)
			}
			if strings.Contains(string(out), "listening") {
				t.Errorf("shomei-ca listened before refusing:\n%s", out)
			}
		})
	}
}

// rewrite replaces old with new in the file at path.
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAttackLongResponderValidity: a revoked responder certificate stops
// being usable only when it expires unrenewed (it carries
// id-pkix-ocsp-nocheck, R-R6), so its lifetime is the window in which a
// stolen replica key forges status after the operator revoked it. The CA
// took any ocsp.responder_validity: with a year, a replica's responder
// certificate lived a year. Now more than ca.MaxResponderValidity stops
// the CA at start, naming the setting.
func TestAttackLongResponderValidity(t *testing.T) {
	dir := t.TempDir()
	conf := writeConfig(t, dir, "e2e-secret-dirs", "ocsp:\n  responder_validity: 8760h\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "shomei-ca"), "--config", conf).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("shomei-ca started with responder_validity 8760h: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "responder_validity") || strings.Contains(string(out), "listening") ||
		strings.Contains(string(out), "key ceremony") {
		t.Errorf("shomei-ca's refusal does not name ocsp.responder_validity before anything else:\n%s", out)
	}
}
