package main

import (
	"github.com/spf13/cobra"
)

// newNoticesCommand is `shomeictl notices`: the certificates entering their
// renewal window, for a municipality's renewal notices (有効期限通知書).
func newNoticesCommand(c *caClient) *cobra.Command {
	return operatorGroup(&cobra.Command{
		Use:   "notices",
		Short: "List a municipality's certificates entering their renewal window, as CSV",
	}, c)
}
