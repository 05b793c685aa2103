package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	configPath := flag.String("config", envOr("SHOMEI_OCSP_CONFIG", "var/shomei-ocsp.yaml"), "configuration file")
	verbose := flag.Bool("v", false, "log in detail")
	printKeys := flag.Bool("print-responder-keys", false, "generate the responder keys in the HSM if missing, print their pins (to enroll as the CA's clients[].responder_keys) and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: shomei-ocsp [--config FILE] [-v] [--print-responder-keys]

Runs an OCSP replica: it follows a Shomei CA's certificate statuses over
gRPC into its own bbolt file, signs with its own delegated responder keys
(in its HSM, certified by the CA) and keeps answering while the CA is down.
The HSM PIN comes from the file or environment variable the configuration
names, never from a flag.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *printKeys {
		if err := printResponderKeys(ctx, *configPath, os.Stdout, log); err != nil {
			log.Error("shomei-ocsp --print-responder-keys", "error", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *configPath, log); err != nil {
		log.Error("shomei-ocsp stopped", "error", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
