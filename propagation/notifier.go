package propagation

// Notifier is what the CA holds: it calls Notify after every status change
// (ca.Config.OnStatusChange). It is made before the CA and handed to New
// afterwards; Notify never blocks, and notifications coalesce.
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
