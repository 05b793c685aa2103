package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests in a network namespace with only loopback, as
// the ocsp command runs: openssl ocsp listens on every interface. It also
// plays the server process (ocsp-serve, presign-serve) when measureOCSP or
// measurePresign starts this binary as one, and the connection holder
// (hostile-hold) of the hostile command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "ocsp-serve" || os.Args[1] == "hostile-hold" || os.Args[1] == "presign-serve" || os.Args[1] == "scale-sign") {
		root := newRootCommand()
		root.SetArgs(os.Args[1:])
		if err := root.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	reexecuted, err := inOwnNetns(context.Background(), os.Args[1:])
	if code, ok := errors.AsType[exitCode](err); ok {
		os.Exit(int(code))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shomei-bench tests need a network namespace of their own:", err)
		os.Exit(1)
	}
	if reexecuted {
		os.Exit(0)
	}
	os.Exit(m.Run())
}
