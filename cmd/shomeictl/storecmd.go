package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/config"
)

// newStoreCommand: the store's own maintenance, offline (the CA stopped).
func newStoreCommand(g *globals) *cobra.Command {
	group := &cobra.Command{
		Use:   "store",
		Short: "Maintain the CA's store: move a bbolt store into PostgreSQL",
	}
	var from string
	migrate := &cobra.Command{
		Use:   "migrate --from FILE",
		Short: "Copy a bbolt store into the PostgreSQL store the configuration names",
		Long: `migrate copies every record of the bbolt store FILE into the PostgreSQL
database that --config names (store.driver: postgres), which must hold no
records yet; the schema is made on the way. Stop the CA that uses FILE first:
the file is opened for reading and is locked while the copy runs.

The copy is byte for byte (the audit log's hash chain and every index stay as
they are) and shows its progress. Afterwards it compares every bucket's key
count and the audit log's head with FILE's and verifies the copied audit
chain; then set the new configuration on the CA (the HSM and its audit
witness do not change) and start it. A copy that fails part way leaves the
database partly written: drop the database, create it again and rerun.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return fmt.Errorf("--from is required: the bbolt store file to copy")
			}
			if _, err := os.Stat(from); err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			c, err := g.config()
			if err != nil {
				return err
			}
			if c.Store.Driver != config.DriverPostgres {
				return fmt.Errorf("the configuration %s has store.driver %s: migrate copies into a PostgreSQL store (store.driver: postgres)", c.Path, c.Store.Driver)
			}
			src, err := store.Open(from, store.Options{})
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := c.Store.Open(store.Options{})
			if err != nil {
				return err
			}
			defer dst.Close()
			var bar *countProgress
			counts, err := src.CopyTo(dst, func(done, total int) {
				if bar == nil {
					bar = newCountProgress(cmd.ErrOrStderr(), "migrate", uint64(total), func(done, total uint64) string {
						pct := 100.0
						if total > 0 {
							pct = float64(done) * 100 / float64(total)
						}
						return fmt.Sprintf("%d of %d records (%.0f%%)", done, total, pct)
					})
				}
				bar.update(uint64(done))
			})
			if bar != nil {
				bar.finish()
			}
			if err != nil {
				return err
			}
			seq, head, err := dst.AuditHead()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrated %s to %s: %d certificates, %d issuer generations, %d responders, %d audit records; "+
				"every bucket's count and the audit head (record %d sha256:%x) match, and the audit chain verifies\n",
				from, dst.Where(), counts.Certificates, counts.Issuers, counts.Responders, counts.AuditRecords, seq, head)
			return nil
		},
	}
	migrate.Flags().StringVar(&from, "from", "", "the bbolt store file to copy (its CA stopped)")
	group.AddCommand(migrate)
	return group
}
