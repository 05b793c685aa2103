package testenv_test

import (
	"context"
	"crypto/x509"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/config"
	"github.com/shomei-pki/shomei/internal/testenv"
)

var token = testenv.HSM{Module: "/usr/lib/softhsm/libsofthsm2.so", SoftHSMConf: "/tmp/softhsm2.conf", Label: "t"}

// The configurations pass the binaries' own strict decoding, and say what
// their documentation says.
func TestConfigsDecode(t *testing.T) {
	dir := t.TempDir()
	ca, err := config.Decode(strings.NewReader(testenv.CAConfig(token, "certificates:\n  allow_ecdsa_p256: true\n")), dir)
	if err != nil {
		t.Fatalf("CAConfig: %v", err)
	}
	if ca.Store.Path != filepath.Join(dir, "shomei.db") || ca.HSM.Module != token.Module || ca.HSM.TokenLabel != "t" ||
		ca.HSM.ModuleEnv["SOFTHSM2_CONF"] != token.SoftHSMConf || ca.HSM.File != filepath.Join(dir, testenv.PINFile) ||
		ca.Server.GRPCListen != "127.0.0.1:0" || ca.Server.HTTPListen != "127.0.0.1:0" || !ca.Certificates.AllowECDSAP256 {
		t.Errorf("CAConfig decodes to %+v", ca)
	}
	r, err := config.DecodeReplica(strings.NewReader(testenv.Replica{Name: "r1", CAAddress: "127.0.0.1:9", CA: "  token_file: replica.token\n",
		HSM: token, Extra: "http_access:\n  mode: open\n"}.YAML()), dir)
	if err != nil {
		t.Fatalf("Replica: %v", err)
	}
	if r.Name != "r1" || r.CA.Address != "127.0.0.1:9" || r.CA.TokenFile != filepath.Join(dir, "replica.token") ||
		r.Store.Path != filepath.Join(dir, "replica.db") || r.HSM.TokenLabel != "t" || r.HTTPListen != "127.0.0.1:0" || r.HTTPAccess.Mode != "open" {
		t.Errorf("Replica decodes to %+v", r)
	}
}

func TestCommandStart(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	ready := regexp.MustCompile(`^ready (\S+) (\S+)$`)
	t.Run("ready", func(t *testing.T) {
		var also testenv.LogBuffer
		p, err := testenv.Command{Path: sh, Args: []string{"-c", "echo starting >&2; echo ready a:1 b:2 >&2; exec sleep 60"},
			Ready: ready, Within: 10 * time.Second, Log: &also}.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Ready, []string{"a:1", "b:2"}) {
			t.Errorf("Ready %q", p.Ready)
		}
		if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Errorf("Stop: %v, want the SIGTERM it died of", err)
		}
		if want := "starting\nready a:1 b:2\n"; p.Log.String() != want || also.String() != want {
			t.Errorf("logs %q and %q, want %q", p.Log, &also, want)
		}
	})
	t.Run("exits first", func(t *testing.T) {
		p, err := testenv.Command{Path: sh, Args: []string{"-c", "echo no config >&2; exit 3"}, Ready: ready, Within: 10 * time.Second}.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "exited before it was ready: exit status 3") || p.Log.String() != "no config\n" {
			t.Fatalf("err %v, log %q", err, p.Log)
		}
	})
	t.Run("never ready", func(t *testing.T) {
		p, err := testenv.Command{Path: sh, Args: []string{"-c", "exec sleep 60"}, Ready: ready, Within: 200 * time.Millisecond}.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "not ready within") {
			t.Fatalf("err %v", err)
		}
		select {
		case <-p.Exited():
		default:
			t.Error("the process still runs after the wait ran out")
		}
	})
}

func TestCardCSR(t *testing.T) {
	der, err := testenv.NewCardCSR()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.String() != "CN=card" || csr.CheckSignature() != nil {
		t.Errorf("CSR subject %s, signature %v", csr.Subject, csr.CheckSignature())
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		n, per int
		want   []int
	}{{0, 10, nil}, {10, 10, []int{10}}, {25, 10, []int{10, 10, 5}}, {3, 10, []int{3}}} {
		if got := testenv.Split(c.n, c.per); !slices.Equal(got, c.want) {
			t.Errorf("Split(%d, %d) = %v, want %v", c.n, c.per, got, c.want)
		}
	}
}

func TestParallel(t *testing.T) {
	var calls atomic.Int64
	var n int
	testing.Benchmark(func(b *testing.B) {
		n = b.N
		calls.Store(0)
		testenv.Parallel(b, 4, func() error {
			calls.Add(1)
			return nil
		})
	})
	if calls.Load() != int64(n) {
		t.Errorf("fn called %d times in a run of b.N = %d", calls.Load(), n)
	}
}
