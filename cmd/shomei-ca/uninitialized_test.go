package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/ca/audit"
	"github.com/shomei-pki/shomei/internal/testenv/open"
)

// TestStartRefusesUninitializedStore: shomei-ca never runs the key
// ceremony itself. Over a store without issuers — a fresh one, or a
// store.path pointing at the wrong file next to an initialized token — it
// exits non-zero before listening, names the store and says to run
// shomeictl init, and the HSM gets no new key or witness. After shomeictl
// init, as an operator does, it starts.
func TestStartRefusesUninitializedStore(t *testing.T) {
	const label = "e2e-uninitialized"
	dir := t.TempDir()
	conf := writeConfig(t, dir, label, "")

	refused := func(t *testing.T, conf, store string) {
		t.Helper()
		before := tokenObjects(t, label)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, "shomei-ca"), "--config", conf).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("shomei-ca did not exit within a minute over an uninitialized store:\n%s", out)
		}
		if err == nil {
			t.Fatalf("shomei-ca exited 0 over an uninitialized store:\n%s", out)
		}
		for _, want := range []string{"shomeictl init", store} {
			if !strings.Contains(string(out), want) {
				t.Errorf("shomei-ca's refusal does not name %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "listening") || strings.Contains(string(out), "key ceremony complete") {
			t.Errorf("shomei-ca started before refusing:\n%s", out)
		}
		if after := tokenObjects(t, label); !slices.Equal(after, before) {
			t.Errorf("the token's objects changed while shomei-ca refused to start:\nbefore %q\nafter  %q", before, after)
		}
	}

	t.Run("an empty store and an empty token", func(t *testing.T) {
		refused(t, conf, "shomei.db")
		if objs := tokenObjects(t, label); len(objs) != 0 {
			t.Errorf("the empty token has objects after the refusal: %q", objs)
		}
	})

	t.Run("a wrong store path next to an initialized token", func(t *testing.T) {
		initStore(t, conf)
		if objs := tokenObjects(t, label); len(objs) == 0 {
			t.Fatal("shomeictl init left no key in the token")
		}
		typo := filepath.Join(dir, "typo.yaml")
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(typo, []byte(strings.Replace(string(b), "path: shomei.db", "path: shomei-typo.db", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		refused(t, typo, "shomei-typo.db")
	})

	t.Run("started once shomeictl init has run", func(t *testing.T) {
		p := startCA(t, conf)
		p.stop(t)
	})
}

// tokenObjects lists the token's private keys and audit witnesses, sorted.
func tokenObjects(t *testing.T, label string) []string {
	t.Helper()
	tok := open.Token(t, label)
	defer tok.Close()
	ctx := context.Background()
	keys, err := tok.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var objs []string
	for _, k := range keys {
		objs = append(objs, fmt.Sprintf("key %s/%x", k.Label, k.ID))
	}
	witnesses, err := tok.ReadData(ctx, audit.WitnessLabel)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range witnesses {
		objs = append(objs, w.String())
	}
	slices.Sort(objs)
	return objs
}
