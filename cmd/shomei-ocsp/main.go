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
	f.Register(flag.CommandLine, "SHOMEI_OCSP_CONFIG", "var/shomei-ocsp.yaml")
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
	log := f.Logger()
	if *printKeys {
		command.Main(log, "shomei-ocsp --print-responder-keys", func(ctx context.Context) error {
			return printResponderKeys(ctx, f.Config, os.Stdout, log)
		})
		return
	}
	command.Main(log, "shomei-ocsp stopped", func(ctx context.Context) error {
		return run(ctx, f.Config, log)
	})
}
