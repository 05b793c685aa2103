package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	cav1 "github.com/shomei-pki/shomei/api/shomei/ca/v1"
	opsv1 "github.com/shomei-pki/shomei/api/shomei/ops/v1"
	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/internal/x509enc"
)

// newAuditListCommand is `audit list`: the log for people, its codes
// named, or with --json for machines.
func newAuditListCommand(g *globals, client *caClient) *cobra.Command {
	var (
		since           string
		offline, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--since TIME] [--json]",
		Short: "Print the audit log from a time on, oldest first, codes named: one line a record, or JSON lines",
		Long: `list prints the audit records at or after --since (RFC 3339; default: all),
oldest first, one a line:

  SEQ  TIME  ACTOR  ACTION  key=value …

with the numbers some records hold named: a revocation's reason by its
RFC 5280 name (reason=affiliationChanged), an event's kind and cause and an
issuance's applicant by the CA API's enum names (kind=EVENT_KIND_DEATH,
cause=CHANGE_CAUSE_MOVE, applicant=APPLICANT_KIND_SELF). A number that
names nothing is printed as it is. Values with spaces, quotes or '=' are
quoted (Go syntax).

--json prints JSON lines instead, one object a record, with these fields,
which stay stable:

  {"seq": 12, "time": "RFC 3339", "actor": "…", "action": "certificate.revoke",
   "fields": [{"key": "reason", "value": "affiliationChanged", "code": "3"}, …]}

fields keep the record's order; "code" is the number the record holds,
present only where "value" names it. audit export prints the records as
stored (numbers, and the hash chain's prevHash), for verification.

Through the running CA (recorded in the log as an export), or with
--offline from the store of --config with shomei-ca stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			write := writeAuditLine
			if asJSON {
				write = writeAuditJSON
			}
			return auditRecords(cmd.Context(), g, client, since, offline, func(r *opsv1.AuditRecord) error {
				return write(out, namedAuditRecord(r))
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "records at or after this time, RFC 3339 (e.g. 2026-11-21T00:00:00+09:00)")
	cmd.Flags().BoolVar(&offline, "offline", false, "read the store of --config with shomei-ca stopped")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines, one object a record, for machines")
	return cmd
}

// auditEntry is an audit record as audit list prints it; its JSON names
// are the --json format.
type auditEntry struct {
	Seq    uint64       `json:"seq"`
	Time   string       `json:"time"`
	Actor  string       `json:"actor"`
	Action string       `json:"action"`
	Fields []auditValue `json:"fields"`
}

// auditValue is one field of an auditEntry: Value names Code, the number
// the record holds, when Code is set.
type auditValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Code  string `json:"code,omitempty"`
}

// auditCodes names the numbers audit records hold, by action and field
// key. The names are the ones Shomei uses elsewhere: RFC 5280's for
// CRLReason codes (x509enc, as on CRLs and in the CA's API), the CA API's
// proto enums for what a municipal system sends. The actions are the
// store's, which reads these records back (store.ReconcileAudit).
var auditCodes = map[string]map[string]func(int32) string{
	store.ActionRevoke:          {"reason": reasonCodeName},
	store.ActionResponderRevoke: {"reason": reasonCodeName},
	store.ActionEventReport:     {"kind": enumName(cav1.EventKind_name), "cause": enumName(cav1.ChangeCause_name)},
	store.ActionIssue:           {"applicant": enumName(cav1.ApplicantKind_name)},
	store.ActionRenew:           {"applicant": enumName(cav1.ApplicantKind_name)},
}

// reasonCodeName is x509enc.ReasonName for a proto int32.
func reasonCodeName(code int32) string { return x509enc.ReasonName(int(code)) }

// enumName names a proto enum's number by its generated name table.
func enumName(names map[int32]string) func(int32) string {
	return func(code int32) string { return names[code] }
}

// namedAuditRecord is r with the numbers auditCodes knows named.
func namedAuditRecord(r *opsv1.AuditRecord) auditEntry {
	e := auditEntry{Seq: r.GetSeq(), Time: r.GetTime(), Actor: r.GetActor(), Action: r.GetAction(), Fields: []auditValue{}}
	namers := auditCodes[e.Action]
	for _, f := range r.GetFields() {
		v := auditValue{Key: f.GetKey(), Value: f.GetValue()}
		if name := namers[v.Key]; name != nil {
			if code, err := strconv.ParseInt(v.Value, 10, 32); err == nil {
				if n := name(int32(code)); n != "" {
					v.Code, v.Value = v.Value, n
				}
			}
		}
		e.Fields = append(e.Fields, v)
	}
	return e
}

// writeAuditLine writes e as one line: seq, time, actor, action, then its
// fields as key=value.
func writeAuditLine(w io.Writer, e auditEntry) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\t%s\t%s\t%s", e.Seq, e.Time, quoteAudit(e.Actor), e.Action)
	for _, f := range e.Fields {
		b.WriteString(" ")
		b.WriteString(f.Key)
		b.WriteString("=")
		b.WriteString(quoteAudit(f.Value))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// quoteAudit quotes s (Go syntax) when it is empty or holds a space, a
// quote, '=', or anything not printable, so that a line splits back into
// its fields.
func quoteAudit(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\"'=\\") || strconv.Quote(s) != `"`+s+`"` {
		return strconv.Quote(s)
	}
	return s
}

// writeAuditJSON writes e as one line of JSON.
func writeAuditJSON(w io.Writer, e auditEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}
