package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/shomei-pki/shomei/internal/config"
)

// pprofEnv names the environment variable that, when set, has shomei-ca
// serve Go's profiles (net/http/pprof, /debug/pprof/) on the loopback
// address it holds, for benchmarks (shomei-bench scale --ca-profile). It is
// unset, and nothing is served, unless a person or a benchmark sets it;
// the profiles show no personal data, but a listener of their own keeps
// them off the CA's public HTTP listener.
const pprofEnv = "SHOMEI_PPROF_LISTEN"

// servePprof starts the profile listener when pprofEnv is set. A value that
// is not a loopback host:port is an error: the CA does not start.
func servePprof(log *slog.Logger) error {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return nil
	}
	if !config.IsLoopback(addr) {
		return fmt.Errorf("%s=%q: want a loopback host:port, such as 127.0.0.1:6060", pprofEnv, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", pprofEnv, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	log.Warn("serving Go profiles (benchmarks only)", "env", pprofEnv, "address", ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profile listener stopped", "error", err)
		}
	}()
	return nil
}
