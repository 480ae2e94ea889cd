package alertmanager

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"sync"
	"time"
)

// Opening is what a firing notification says about its incident.
type Opening struct {
	// Key identifies the alert group across notifications: Alertmanager's
	// groupKey. At most one incident per key is open at a time.
	Key string
	// Services are the services named by the firing alerts' service label,
	// sorted and unique; never empty.
	Services []string
	// At is when the incident began: the earliest startsAt of the firing
	// alerts (the receiver's clock when none has one).
	At time.Time
	// Title is a one-line description: the common summary annotation, else
	// the alert name.
	Title string
	// Severity is the common "severity" label, "" when the alerts differ or
	// have none.
	Severity string
	// Attributes are details worth keeping: alertmanager.group_key,
	// alertmanager.receiver, alertmanager.external_url, alertname.
	Attributes map[string]string
}

// Incidents records incident windows opened and closed by alert groups.
// Implementations must be safe for concurrent use and idempotent, because
// Alertmanager re-sends a group's notification on every repeat_interval,
// retries failed deliveries, and in a high-availability pair may deliver
// one notification from each peer:
//
//   - OpenOrJoin: if an incident with o.Key is open, add o.Services to it
//     (union), move its start back to o.At if that is earlier, and return
//     its id. Else, if the newest incident with o.Key was resolved at or
//     after o.At, the notification is a late copy of one already closed:
//     return that incident's id and change nothing. Else open a new
//     incident with id IncidentID(o.Key, o.At) and return it with opened
//     true (opened is false in the other two cases).
//   - Resolve: close the open incident with key at time at and return its
//     id; with none open return "" and no error (a repeated or late resolve
//     is not a failure).
//
// An error means nothing was recorded; the receiver answers 500 so that
// Alertmanager retries.
type Incidents interface {
	OpenOrJoin(ctx context.Context, o Opening) (id string, opened bool, err error)
	Resolve(ctx context.Context, key string, at time.Time) (id string, err error)
}

// incidentIDVersion tags IncidentID's encoding.
const incidentIDVersion = "correlator.incident.alertmanager.v1"

// IncidentID derives an incident's id from the group key and the time the
// incident began, so that two receivers (or a retry after a crash) opening
// the same incident agree on its id, while a group that fires again after
// being resolved gets a new one: 32 hex digits of SHA-256, as ingest's ids.
func IncidentID(key string, at time.Time) string {
	b := binary.AppendUvarint(nil, uint64(len(incidentIDVersion)))
	b = append(b, incidentIDVersion...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(at.UnixNano()))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Incident is one incident as MemIncidents keeps it.
type Incident struct {
	ID         string
	Key        string
	Title      string
	Severity   string
	Services   []string
	OpenedAt   time.Time
	ResolvedAt time.Time // zero while open
	Attributes map[string]string
	// Updates counts the recorded states: 1 when opened, +1 per join that
	// changed it, +1 when resolved (the incidents table keeps one row each).
	Updates int
}

// Open reports whether the incident is not resolved.
func (i Incident) Open() bool { return i.ResolvedAt.IsZero() }

// MemIncidents is an in-memory Incidents, for tests and for running without
// a store. Its zero value is ready to use.
type MemIncidents struct {
	mu  sync.Mutex // mu guards all.
	all []*Incident
}

var _ Incidents = (*MemIncidents)(nil)

// latest returns the newest incident with key, or nil.
func (m *MemIncidents) latest(key string) *Incident {
	for i := len(m.all) - 1; i >= 0; i-- {
		if m.all[i].Key == key {
			return m.all[i]
		}
	}
	return nil
}

// OpenOrJoin implements Incidents.
func (m *MemIncidents) OpenOrJoin(_ context.Context, o Opening) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.latest(o.Key)
	switch {
	case inc != nil && inc.Open():
		changed := false
		for _, s := range o.Services {
			if !slices.Contains(inc.Services, s) {
				inc.Services = append(inc.Services, s)
				changed = true
			}
		}
		slices.Sort(inc.Services)
		if o.At.Before(inc.OpenedAt) {
			inc.OpenedAt, changed = o.At, true
		}
		if changed {
			inc.Updates++
		}
		return inc.ID, false, nil
	case inc != nil && !inc.ResolvedAt.Before(o.At):
		return inc.ID, false, nil // a late copy of a notification already resolved
	}
	inc = &Incident{
		ID: IncidentID(o.Key, o.At), Key: o.Key, Title: o.Title, Severity: o.Severity,
		Services: slices.Clone(o.Services), OpenedAt: o.At, Attributes: maps.Clone(o.Attributes), Updates: 1,
	}
	m.all = append(m.all, inc)
	return inc.ID, true, nil
}

// Resolve implements Incidents.
func (m *MemIncidents) Resolve(_ context.Context, key string, at time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.latest(key)
	if inc == nil || !inc.Open() {
		return "", nil
	}
	// An incident cannot end before it began (clock skew between alerts).
	if at.Before(inc.OpenedAt) {
		at = inc.OpenedAt
	}
	inc.ResolvedAt = at
	inc.Updates++
	return inc.ID, nil
}

// List returns copies of every incident, oldest first.
func (m *MemIncidents) List() []Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Incident, len(m.all))
	for i, inc := range m.all {
		out[i] = *inc
		out[i].Services = slices.Clone(inc.Services)
		out[i].Attributes = maps.Clone(inc.Attributes)
	}
	return out
}
