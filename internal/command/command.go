package command

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/shomei-pki/shomei/internal/gctuning"
)

// Flags are the flags every binary takes.
type Flags struct {
	// Config is the configuration file (--config).
	Config string
	// Verbose logs in detail (-v).
	Verbose bool
}

// DefaultConfig is the value of the environment variable env, or path
// when it is unset or empty.
func DefaultConfig(env, path string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return path
}

// Register adds --config (default: DefaultConfig(env, path)) and -v to fs,
// for the servers.
func (f *Flags) Register(fs *flag.FlagSet, env, path string) {
	fs.StringVar(&f.Config, "config", DefaultConfig(env, path), "configuration file")
	fs.BoolVar(&f.Verbose, "v", false, "log in detail")
}

// RegisterPersistent adds --config (default: DefaultConfig(env, path)) and
// --verbose/-v to fs, for shomeictl's commands.
func (f *Flags) RegisterPersistent(fs *pflag.FlagSet, env, path string) {
	fs.StringVar(&f.Config, "config", DefaultConfig(env, path), "configuration file")
	fs.BoolVarP(&f.Verbose, "verbose", "v", false, "log progress in detail")
}

// Logger logs text to stderr, at debug level with -v.
func (f *Flags) Logger() *slog.Logger { return NewLogger(os.Stderr, f.Verbose) }

// NewLogger logs text to w, at debug level when verbose.
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// SignalContext is a context that ends at SIGINT or SIGTERM: the servers
// then stop gracefully.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Main runs run with a context that ends at SIGINT or SIGTERM; when run
// fails it logs failure with the error and exits with status 1.
func Main(log *slog.Logger, failure string, run func(context.Context) error) {
	ctx, stop := SignalContext()
	err := run(ctx)
	stop()
	if err != nil {
		log.Error(failure, "error", err)
		os.Exit(1)
	}
}

// TuneGC sets the servers' garbage-collector target (internal/gctuning),
// saying so when the environment's GOGC chose it.
func TuneGC(log *slog.Logger) {
	if percent, fromEnv := gctuning.Apply(); fromEnv {
		log.Info("garbage collector target from GOGC", "percent", percent)
	}
}

// NewRegistry is a server's metrics registry, with the Go runtime's and
// the process's collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
