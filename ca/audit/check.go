package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/shomei-pki/shomei/ca/store"
	"github.com/shomei-pki/shomei/hsm"
)

// Check is the whole check of the audit log (R-K3), as the running CA's
// VerifyAudit and `shomeictl audit verify --offline` run it: the audit key
// and the HSM's witness are found in tok, then Verify. The HSM holding no
// audit key is not an error here (a store older than it): every checkpoint
// then fails, and a log without checkpoints verifies.
//
// The witness is read before the store, so a checkpoint the running CA
// signs meanwhile only puts the log further ahead of the witness read,
// which verifies (the store commits a checkpoint before the HSM witnesses
// it).
func Check(ctx context.Context, st *store.Store, tok *hsm.Token) (*Report, *Witness, error) {
	key, err := Key(ctx, tok, false, nil)
	var pub any
	switch {
	case err == nil:
		pub = key.Public()
	case !errors.Is(err, ErrNoKey):
		return nil, nil, err
	}
	witness, err := ReadWitness(ctx, tok, pub)
	if err != nil {
		return &Report{}, nil, err
	}
	r, err := Verify(st, pub, witness)
	return r, witness, err
}

// Fault is where a failed check puts the fault: the first bad record's seq
// (0 when the fault is not in one record: the HSM's witness, a rollback, a
// certificate's state the log does not explain) and what is wrong.
type Fault struct {
	Seq     uint64
	Problem string
}

// FaultOf says what a Check or Verify error found in the log. ok is false
// for an error that is no finding about the log (the store or the HSM
// could not be read): the check did not run to its end.
func FaultOf(err error) (f Fault, ok bool) {
	if err == nil {
		return Fault{}, false
	}
	if rb, is := errors.AsType[*RollbackError](err); is {
		return Fault{Problem: rb.Error()}, true
	}
	if t, is := errors.AsType[*store.AuditTamperedError](err); is {
		return Fault{Seq: t.Seq, Problem: t.Reason}, true
	}
	if u, is := errors.AsType[*store.UnexplainedError](err); is {
		return Fault{Problem: fmt.Sprintf("certificate %s: %s (R-K3: its state is not what the log says happened to it)", u.Serial, u.Reason)}, true
	}
	if errors.Is(err, ErrWitnessUnreadable) || errors.Is(err, ErrNoKey) {
		return Fault{Problem: err.Error()}, true
	}
	return Fault{}, false
}
