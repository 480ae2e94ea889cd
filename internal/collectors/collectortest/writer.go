// Package collectortest is what the collectors' tests share: a fake
// Writer that records change batches (and fails when told to), the checks
// every change receiver's answer must pass (used by the webhook fuzz
// targets), the concurrent client loop of the sustained-ingest benchmarks,
// and the starting of a real Prometheus or Alertmanager process.
//
// Only tests import it; TestOnlyTestsImport keeps it that way. It must not
// import the collectors it serves: the tests of package changes use it, so
// importing changes here would be an import cycle. What the checks need of
// changes (its Validate) is passed in.
package collectortest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/correlator/correlator/internal/event"
)

// ErrStoreDown is what a failing Writer returns.
var ErrStoreDown = errors.New("collectortest: the store is down")

// Writer is a fake writer of event batches: it counts the batches it is
// given and keeps their changes (other records are not kept). When Fail is
// set it keeps them all the same and then returns ErrStoreDown, as a store
// that failed after the receiver handed over the batch. It is safe for
// concurrent use; set Fail before the first Add.
type Writer struct {
	// Fail makes every Add return ErrStoreDown.
	Fail bool

	mu      sync.Mutex // mu guards calls and changes.
	calls   int
	changes []event.Change
}

// Add records b's changes and counts the call.
func (w *Writer) Add(_ context.Context, b *event.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.changes = append(w.changes, b.Changes...)
	if w.Fail {
		return ErrStoreDown
	}
	return nil
}

// Calls returns how many times Add was called.
func (w *Writer) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

// Changes returns a copy of the changes given to Add so far, in order.
func (w *Writer) Changes() []event.Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changes)
}
