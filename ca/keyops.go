package ca

// Approval is who asked for an issuer key operation and who agreed to it
// (R-K1, R-K2): the audit log records all of them with the operation.
type Approval struct {
	// ProposalID is the approved proposal (ca/ops).
	ProposalID string
	// Proposer proposed it; Approvers approved it, the proposer first.
	Proposer  string
	Approvers []string
}
