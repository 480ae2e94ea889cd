package impact

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/correlator/correlator/internal/store"
)

// IncidentReader reads an incident's states; *store.Store implements it.
type IncidentReader interface {
	IncidentHistory(ctx context.Context, id string) ([]store.Incident, error)
}

// ErrUnknownIncident is returned for an incident id with no record.
var ErrUnknownIncident = errors.New("unknown incident")

// IncidentQuery turns an incident into an impact question: its services,
// from its onset (or, before one is known, its opening) to its resolution
// (or now, while it is open).
func IncidentQuery(ctx context.Context, r IncidentReader, id string, now time.Time) (Query, error) {
	hist, err := r.IncidentHistory(ctx, id)
	if err != nil {
		return Query{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	if len(hist) == 0 {
		return Query{}, fmt.Errorf("%w %q", ErrUnknownIncident, id)
	}
	in := hist[len(hist)-1]
	// The table stores unset times as the epoch.
	set := func(t time.Time) bool { return t.Unix() > 0 }
	q := Query{Services: in.Services, Incident: in.ID, From: in.OpenedAt, To: now}
	if set(in.Onset) {
		q.From, q.Onset = in.Onset, in.Onset
	}
	if set(in.ResolvedAt) {
		q.To = in.ResolvedAt
	}
	if !q.To.After(q.From) {
		return Query{}, &IncidentError{fmt.Sprintf("incident %s: resolved at %s, not after its start %s", id, q.To.UTC().Format(time.RFC3339), q.From.UTC().Format(time.RFC3339))}
	}
	return q, nil
}

// IncidentError is a stored incident that cannot be asked about as it is.
type IncidentError struct{ msg string }

func (e *IncidentError) Error() string { return e.msg }
