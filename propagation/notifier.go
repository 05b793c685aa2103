package propagation

// Notifier is a wake-up call that never blocks: the CA calls Notify after
// every status change (ca.Config.OnStatusChange; New drains it) and after
// its issuer key generations change (ca.Config.OnIssuersChanged; shomei-ca
// drains that one through C). It is made before the CA; notifications
// coalesce.
type Notifier struct {
	wake chan struct{}
}

// NewNotifier makes a Notifier.
func NewNotifier() *Notifier {
	return &Notifier{wake: make(chan struct{}, 1)}
}

// Notify says that the store's status-change log has grown.
func (n *Notifier) Notify() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// C receives after Notify, once however many came meanwhile: for a
// drainer other than Propagation's.
func (n *Notifier) C() <-chan struct{} { return n.wake }
