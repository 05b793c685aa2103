package main

import (
	"fmt"
	"os"

	"github.com/shomei-pki/shomei/internal/command"
)

func main() {
	ctx, stop := command.SignalContext()
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shomeictl:", err)
		os.Exit(1)
	}
}
