package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
	"github.com/shomei-pki/shomei/internal/command"
	"github.com/shomei-pki/shomei/internal/config"
)

// defaultConfig is where `make run` writes the development configuration.
const defaultConfig = "var/shomei.yaml"

// globals are the flags every command shares: --config and -v.
type globals struct {
	command.Flags
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "shomeictl",
		Short: "Operate a Shomei certificate authority: key ceremony, issuer keys, issuer certificates",
		Long: `shomeictl is the operator's tool for a Shomei certificate authority.

It reads the configuration file given by --config (default: $SHOMEI_CONFIG,
else ` + defaultConfig + `). The HSM PIN is read from the pin_file or pin_env the
configuration names; it is never accepted as a flag.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.RegisterPersistent(root.PersistentFlags(), "SHOMEI_CONFIG", defaultConfig)
	// The operator's commands talk to the running CA (its Operations
	// service) and share the connection flags; init (the first key
	// ceremony), card and events do not.
	client := &caClient{}
	root.AddCommand(newInitCommand(g), newKeysCommand(g, client), newIssuersCommand(g, client), newAuditCommand(g, client), newRespondersCommand(g, client),
		newApprovalsCommand(client), newBackupCommand(g, client), newNoticesCommand(client), newStoreCommand(g),
		newCardCommand(), newEventsCommand())
	return root
}

// logger writes progress to stderr.
func (g *globals) logger() *slog.Logger { return g.Logger() }

func (g *globals) config() (*config.Config, error) {
	c, err := config.Load(g.Config)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && g.Config == defaultConfig {
			return nil, fmt.Errorf("%w (run `make run` once to create the development configuration, or pass --config)", err)
		}
		return nil, err
	}
	return c, nil
}

// open loads the configuration and opens the store and, if withHSM, the token.
// The caller closes what it gets.
func (g *globals) open(withHSM bool) (*config.Config, *store.Store, *hsm.Token, error) {
	c, err := g.config()
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := c.Store.Open(store.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	if !withHSM {
		return c, st, nil, nil
	}
	tok, err := c.OpenHSM()
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return c, st, tok, nil
}
