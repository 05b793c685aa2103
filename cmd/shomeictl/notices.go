package main

import (
	"context"
	"encoding/csv"
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
)

// newNoticesCommand is `shomeictl notices`: the certificates entering their
// renewal window, for a municipality's renewal notices (有効期限通知書).
func newNoticesCommand(c *caClient) *cobra.Command {
	var municipality, within string
	cmd := operatorGroup(&cobra.Command{
		Use:   "notices --municipality CODE --within SPAN",
		Short: "List a municipality's certificates entering their renewal window, as CSV",
		Long: `notices prints, as CSV with the header serial,holder_id,profile,expiry,window_opens,
the certificates of the municipality (5-digit code) that are issued, not
revoked and not expired, whose renewal window (R-V3: from the day after the
date 3 months before expiry) opens between today and SPAN from now, windows
already open included, ordered by window opening then serial: what the
municipality mails its renewal notices 有効期限通知書 from. SPAN is <n>mo
(calendar months, 1 to 12) or a Go duration (e.g. 2160h). The CSV holds
holder ids: keep it as the municipality's mailing data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if municipality == "" || within == "" {
				return errors.New("--municipality CODE and --within SPAN are required")
			}
			var resp *opsv1.ListRenewalNoticesResponse
			err := c.call(cmd.Context(), func(ctx context.Context) error {
				api, ctx, done, err := c.dial(ctx)
				if err != nil {
					return err
				}
				defer done()
				// Up to 100,000 notices: about 15 MB.
				resp, err = api.ListRenewalNotices(ctx, &opsv1.ListRenewalNoticesRequest{MunicipalityCode: municipality, Within: within},
					grpc.MaxCallRecvMsgSize(64<<20))
				return err
			})
			if err != nil {
				return err
			}
			w := csv.NewWriter(cmd.OutOrStdout())
			if err := w.Write([]string{"serial", "holder_id", "profile", "expiry", "window_opens"}); err != nil {
				return err
			}
			for _, n := range resp.Notices {
				profile := strings.ToLower(strings.TrimPrefix(n.Profile.String(), "PROFILE_"))
				if err := w.Write([]string{n.Serial, n.HolderId, profile, n.Expiry, n.WindowOpens}); err != nil {
					return err
				}
			}
			w.Flush()
			return w.Error()
		},
	}, c)
	cmd.Flags().StringVar(&municipality, "municipality", "", "the municipality's 5-digit local government code, e.g. 13221")
	cmd.Flags().StringVar(&within, "within", "3mo", "windows opening up to this far ahead: <n>mo (1-12) or a Go duration")
	return cmd
}
