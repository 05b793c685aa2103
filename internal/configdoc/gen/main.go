package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shomei-pki/shomei/internal/configdoc"
)

func main() {
	out := flag.String("o", "", "output file (default: docs/configuration.md in the module; - for stdout)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	root, err := configdoc.ModuleRoot(".")
	if err != nil {
		return err
	}
	res, err := configdoc.Generate(root, configdoc.Roots)
	if err != nil {
		return err
	}
	for _, k := range res.Undocumented {
		fmt.Fprintf(os.Stderr, "configdoc: %s has no doc comment in its struct\n", k)
	}
	data := append(res.Markdown, '\n')
	switch out {
	case "-":
		_, err = os.Stdout.Write(data)
		return err
	case "":
		out = filepath.Join(root, configdoc.Output)
	}
	return os.WriteFile(out, data, 0o644)
}
