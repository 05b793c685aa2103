package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	storev1 "github.com/shomei-pki/shomei/api/shomei/store/v1"
	"github.com/shomei-pki/shomei/ca/issuer"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/config"
)

// signCost is the CPU time of one HSM signature with the AUTH issuer's
// key, measured by the scale-sign child process.
type signCost struct {
	Algorithm  string        `json:"algorithm"`
	Signatures int           `json:"signatures"`
	CPU        time.Duration `json:"cpu"`     // the child's user and system time in the loop
	Elapsed    time.Duration `json:"elapsed"` // the loop's wall time
}

// PerSignature is the CPU time of one signature.
func (s signCost) PerSignature() time.Duration {
	if s.Signatures == 0 {
		return 0
	}
	return s.CPU / time.Duration(s.Signatures)
}

// measureSignCost runs this program's scale-sign child on the CA's
// configuration (the CA stopped) for d and returns what it measured.
func measureSignCost(ctx context.Context, conf string, d time.Duration) (signCost, error) {
	exe, err := os.Executable()
	if err != nil {
		return signCost{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "scale-sign", "--config", conf, "--for", d.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return signCost{}, fmt.Errorf("scale-sign: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var c signCost
	if err := json.Unmarshal(stdout.Bytes(), &c); err != nil {
		return signCost{}, fmt.Errorf("scale-sign's output: %w", err)
	}
	if c.Signatures == 0 {
		return signCost{}, errors.New("scale-sign made no signature")
	}
	return c, nil
}

// newSignCommand is the child process of measureSignCost.
func newSignCommand() *cobra.Command {
	var conf string
	var d time.Duration
	cmd := &cobra.Command{
		Use:    "scale-sign",
		Short:  "Sign with the AUTH issuer's key in a loop and print the CPU time it took (internal, for scale)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if d <= 0 || d > 10*time.Minute {
				return fmt.Errorf("--for %v is outside (0, 10m]", d)
			}
			c, err := signLoop(cmd.Context(), conf, d)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(c)
		},
	}
	cmd.Flags().StringVar(&conf, "config", "", "the CA's configuration")
	cmd.Flags().DurationVar(&d, "for", 5*time.Second, "how long to sign")
	cmd.MarkFlagRequired("config")
	return cmd
}

// signLoop signs SHA-256 digests with the active AUTH issuer's key,
// through hsm.Signer as the CA does (one signature at a time, each
// verified by the signer), for d, and measures this process's CPU time
// over the loop alone.
func signLoop(ctx context.Context, conf string, d time.Duration) (signCost, error) {
	cfg, err := config.Load(conf)
	if err != nil {
		return signCost{}, err
	}
	signer, alg, err := authIssuerSigner(ctx, cfg)
	if err != nil {
		return signCost{}, err
	}
	digest := sha256.Sum256([]byte("shomei-bench scale"))
	// One signature before the clock starts: sessions, caches.
	if _, err := signer.SignContext(ctx, digest[:], crypto.SHA256); err != nil {
		return signCost{}, err
	}
	c := signCost{Algorithm: string(alg)}
	cpu0, began := selfCPU(), time.Now()
	for time.Since(began) < d {
		if _, err := signer.SignContext(ctx, digest[:], crypto.SHA256); err != nil {
			return signCost{}, err
		}
		c.Signatures++
	}
	c.CPU, c.Elapsed = selfCPU()-cpu0, time.Since(began)
	return c, nil
}

// authIssuerSigner is the HSM key of the store's active AUTH issuer,
// checked against its certificate as the CA checks it (hsm.SignerFor).
func authIssuerSigner(ctx context.Context, cfg *config.Config) (*hsm.Signer, hsm.KeyAlgorithm, error) {
	st, err := cfg.Store.Open(store.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, "", err
	}
	issuers, err := issuer.Load(st)
	st.Close()
	if err != nil {
		return nil, "", err
	}
	tok, err := cfg.OpenHSM()
	if err != nil {
		return nil, "", err
	}
	// The token stays open until the process exits.
	for _, is := range issuers {
		if is.Profile != storev1.Profile_PROFILE_AUTH || is.State != storev1.KeyState_KEY_STATE_ACTIVE {
			continue
		}
		alg, err := hsm.AlgorithmOf(is.Certificate.PublicKey)
		if err != nil {
			return nil, "", err
		}
		s, err := tok.SignerFor(ctx, hsm.KeyRef{Label: is.KeyLabel, ID: is.KeyId}, is.Certificate)
		return s, alg, err
	}
	return nil, "", errors.New("the store has no active AUTH issuer")
}

// selfCPU is this process's user and system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
