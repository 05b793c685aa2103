package command_test

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/shomei-pki/shomei/internal/command"
)

// --config defaults to the environment variable, else the development
// path; -v turns on debug logging. Both flag styles agree.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name, env, want string
	}{
		{"env unset", "", "var/shomei.yaml"},
		{"env set", "/etc/shomei/shomei.yaml", "/etc/shomei/shomei.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHOMEI_TEST_CONFIG", tc.env)
			var f command.Flags
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			f.Register(fs, "SHOMEI_TEST_CONFIG", "var/shomei.yaml")
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if f.Config != tc.want || f.Verbose {
				t.Errorf("defaults: config %q verbose %v, want %q false", f.Config, f.Verbose, tc.want)
			}
			var g command.Flags
			pfs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			g.RegisterPersistent(pfs, "SHOMEI_TEST_CONFIG", "var/shomei.yaml")
			if err := pfs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if g != f {
				t.Errorf("cobra flags %+v, standard flags %+v", g, f)
			}
		})
	}
	var f command.Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f.Register(fs, "SHOMEI_TEST_CONFIG", "var/shomei.yaml")
	if err := fs.Parse([]string{"--config", "x.yaml", "-v"}); err != nil {
		t.Fatal(err)
	}
	if f.Config != "x.yaml" || !f.Verbose {
		t.Errorf("parsed %+v, want x.yaml and verbose", f)
	}
	var g command.Flags
	pfs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	g.RegisterPersistent(pfs, "SHOMEI_TEST_CONFIG", "var/shomei.yaml")
	if err := pfs.Parse([]string{"--config", "x.yaml", "-v"}); err != nil {
		t.Fatal(err)
	}
	if g != f {
		t.Errorf("cobra parsed %+v, standard %+v", g, f)
	}
}

func TestLogger(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		var buf bytes.Buffer
		log := command.NewLogger(&buf, verbose)
		log.Debug("detail")
		log.Info("progress")
		if got := strings.Contains(buf.String(), "msg=detail"); got != verbose {
			t.Errorf("verbose %v: debug logged %v\n%s", verbose, got, buf.String())
		}
		if !strings.Contains(buf.String(), "msg=progress") {
			t.Errorf("verbose %v: info not logged\n%s", verbose, buf.String())
		}
	}
}

// Stop ends the background work and waits for it; work that ignores its
// end is reported, not waited for forever.
func TestBackground(t *testing.T) {
	bg := command.NewBackground(context.Background())
	ended := make(chan struct{})
	bg.Go(func(ctx context.Context) { <-ctx.Done(); close(ended) })
	if !bg.Stop(10 * time.Second) {
		t.Fatal("Stop did not see the work end")
	}
	select {
	case <-ended:
	default:
		t.Fatal("Stop returned before the work ended")
	}

	stuck := command.NewBackground(context.Background())
	release := make(chan struct{})
	defer close(release)
	stuck.Go(func(context.Context) { <-release })
	if stuck.Stop(10 * time.Millisecond) {
		t.Error("Stop reported stuck work as ended")
	}

	parent, cancel := context.WithCancel(context.Background())
	child := command.NewBackground(parent)
	done := make(chan struct{})
	child.Go(func(ctx context.Context) { <-ctx.Done(); close(done) })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the work did not end with its parent context")
	}
	child.Stop(time.Second)
}
