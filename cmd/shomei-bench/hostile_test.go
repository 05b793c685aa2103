package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shomei-pki/shomei/internal/testenv"
)

// TestHostileShort runs the hostile command small: a real shomei-ca
// (built here), 5 s of every hostile
// kind with fewer connections, and the good client. The good client must
// see no failure and every hostile kind must have been sent; the report
// must show it all. Not how fast.
func TestHostileShort(t *testing.T) {
	bin := t.TempDir()
	if err := testenv.Build(bin, "../shomei-ca"); err != nil {
		t.Fatal(err)
	}
	o := defaultHostileOptions()
	o.Duration, o.IdleConns, o.SlowBodies = 5*time.Second, 2000, 100
	o.Garbage, o.Oversized, o.Nonce, o.BigGRPC = 1, 1, 1, 1
	o.CABin = filepath.Join(bin, "shomei-ca")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := measureHostile(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	rep.markdown(&md)
	t.Log("\n" + md.String())
	if !rep.pass() {
		t.Errorf("the good client failed or the RSS bound was passed")
	}
	for _, k := range []string{kindGarbage, kindOversized, kindNonce, kindBigGRPC} {
		if rep.Hostile[k].total() == 0 {
			t.Errorf("no %s sent", k)
		}
	}
	if h := rep.Holds[kindIdle]; h.Opened < int64(o.IdleConns)/2 {
		t.Errorf("idle connections: %+v", h)
	}
	for _, want := range []string{"| Issue (gRPC) |", "| " + kindNonce + " |", "| peak RSS (VmHWM) |", "| " + kindSlow + " |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
