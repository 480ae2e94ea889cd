package changes

import (
	"context"

	"github.com/correlator/correlator/internal/event"
)

// Writer receives records; *store.BatchWriter implements it.
type Writer interface {
	Add(ctx context.Context, b *event.Batch) error
}

// MergingWriter passes the changes of each batch through a Merger, then
// hands the batch to the next Writer. Collectors write through one, and
// the server can wrap the writer of its ingest API in one so that
// `correlator mark` (which posts to POST /api/v1/ingest/changes) merges
// with the collectors' reports.
//
// Only changes that ask for merging are merged: those whose id is empty or
// equal to their IdentityID. Collectors and Mark set that id; changes
// ingested with other ids (imports, generated scenarios, the eval harness)
// keep them and pass through untouched. Within one batch, later versions
// of one merged change replace earlier ones, so each is written once.
type MergingWriter struct {
	m    *Merger
	next Writer
}

// NewMergingWriter returns a MergingWriter merging with m into next.
func NewMergingWriter(m *Merger, next Writer) *MergingWriter {
	return &MergingWriter{m: m, next: next}
}

// Mergeable reports whether c asks to be merged: it has an identity and its
// id is empty or its IdentityID.
func Mergeable(c *event.Change) bool {
	id := IdentityID(c)
	return id != "" && (c.ID == "" || c.ID == id)
}

// Add merges b's mergeable changes and writes b. b is not modified.
func (w *MergingWriter) Add(ctx context.Context, b *event.Batch) error {
	if len(b.Changes) == 0 {
		return w.next.Add(ctx, b)
	}
	out := *b
	out.Changes = make([]event.Change, 0, len(b.Changes))
	merged := map[string]int{} // id → index in out.Changes
	for _, c := range b.Changes {
		if !Mergeable(&c) {
			out.Changes = append(out.Changes, c)
			continue
		}
		c = w.m.Merge(ctx, c)
		if i, ok := merged[c.ID]; ok {
			out.Changes[i] = c
			continue
		}
		merged[c.ID] = len(out.Changes)
		out.Changes = append(out.Changes, c)
	}
	return w.next.Add(ctx, &out)
}

// Err reports the next writer's Err, if it has one (for readiness).
func (w *MergingWriter) Err() error {
	if e, ok := w.next.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}
