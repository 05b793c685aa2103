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
	configPath := flag.String("config", envOr("SHOMEI_CONFIG", "var/shomei.yaml"), "configuration file")
	verbose := flag.Bool("v", false, "log in detail")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: shomei-ca [--config FILE] [-v]\n\nRuns the Shomei certificate authority. The HSM PIN comes from the file or\nenvironment variable the configuration names, never from a flag.\n\nFlags:\n")
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
	if err := run(ctx, *configPath, log, nil); err != nil {
		log.Error("shomei-ca stopped", "error", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
