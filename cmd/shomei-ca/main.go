package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/shomei-pki/shomei/internal/command"
)

func main() {
	var f command.Flags
	f.Register(flag.CommandLine, "SHOMEI_CONFIG", "var/shomei.yaml")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: shomei-ca [--config FILE] [-v]\n\nRuns the Shomei certificate authority. The HSM PIN comes from the file or\nenvironment variable the configuration names, never from a flag.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	log := f.Logger()
	if err := servePprof(log); err != nil {
		log.Error("shomei-ca not started", "error", err)
		os.Exit(1)
	}
	command.Main(log, "shomei-ca stopped", func(ctx context.Context) error {
		return run(ctx, f.Config, log, nil)
	})
}
