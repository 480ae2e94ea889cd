// Package incident keeps incidents: windows of trouble with a scope of
// services, opened by an alert (Book) or a person (Tracker), joined by
// later alerts of the same group or updated by people, and resolved. Every
// state is appended to the store's incidents table, so an incident's
// history is kept, not overwritten. While an incident is open the Tracker
// keeps snapshots of what correlator knew about it (ranked causes and
// impact, with the queries behind them), and Accuracy scores those
// rankings against the causes people confirmed.
package incident

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/correlator/correlator/internal/collectors/alertmanager"
	"github.com/correlator/correlator/internal/store"
)

// Statuses of an incident.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
)

// groupKeyAttr is the attribute an alert-opened incident is found by.
const groupKeyAttr = "alertmanager.group_key"

// Store is where incidents live; *store.Store implements it.
type Store interface {
	WriteIncident(ctx context.Context, in store.Incident) error
	IncidentsByAttribute(ctx context.Context, key, value string) ([]store.Incident, error)
}

// Book opens, joins and resolves incidents in a Store. It implements the
// Alertmanager receiver's Incidents: an alert group (its groupKey) has at
// most one open incident, and notifications about it join that one.
type Book struct {
	st  Store
	now func() time.Time
	// notify, when set, is told of every state written (trigger open,
	// update or resolve); a Tracker's Book snapshots the incident then. It
	// must not block: it is called while the alert's request waits.
	notify func(id, trigger string)
	// state serialises reading an incident's current state and writing
	// the next one, in this process; a Tracker's Book shares it with the
	// Tracker, so that an alert joining and a person updating one incident
	// do not both build on the same state.
	state *sync.Mutex

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per group key: calls about one group are serialised
}

var _ alertmanager.Incidents = (*Book)(nil)

// NewBook returns a Book over st.
func NewBook(st Store) *Book {
	return &Book{st: st, now: time.Now, state: &sync.Mutex{}, locks: map[string]*sync.Mutex{}}
}

// notified tells notify, if any, of a state written without error.
func (b *Book) notified(err error, id, trigger string) error {
	if err == nil && b.notify != nil {
		b.notify(id, trigger)
	}
	return err
}

func (b *Book) lock(key string) func() {
	b.mu.Lock()
	l := b.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		b.locks[key] = l
	}
	b.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// latest is the newest incident (by opening time) of the group key.
func (b *Book) latest(ctx context.Context, key string) (*store.Incident, error) {
	all, err := b.st.IncidentsByAttribute(ctx, groupKeyAttr, key)
	if err != nil {
		return nil, fmt.Errorf("incidents of alert group: %w", err)
	}
	var best *store.Incident
	for i := range all {
		if best == nil || all[i].OpenedAt.After(best.OpenedAt) {
			best = &all[i]
		}
	}
	return best, nil
}

// updatedAt is now, but always after the previous state, so that the
// latest state is the row with the latest updated_at even within one
// clock tick.
func (b *Book) updatedAt(prev *store.Incident) time.Time {
	return nextUpdate(b.now(), prev)
}

// nextUpdate is now in UTC, or a millisecond after prev's UpdatedAt when
// now is not after it (the column keeps milliseconds).
func nextUpdate(now time.Time, prev *store.Incident) time.Time {
	t := now.UTC().Truncate(time.Millisecond)
	if prev != nil && !t.After(prev.UpdatedAt) {
		t = prev.UpdatedAt.Add(time.Millisecond)
	}
	return t
}

// OpenOrJoin opens an incident for the alert group, or joins its open one
// (adding services, moving the opening earlier). A late copy of a
// notification already resolved changes nothing.
func (b *Book) OpenOrJoin(ctx context.Context, o alertmanager.Opening) (string, bool, error) {
	defer b.lock(o.Key)()
	b.state.Lock()
	defer b.state.Unlock()
	cur, err := b.latest(ctx, o.Key)
	if err != nil {
		return "", false, err
	}
	switch {
	case cur != nil && cur.Status == StatusOpen:
		next := *cur
		next.Services = slices.Clone(cur.Services)
		for _, s := range o.Services {
			if !slices.Contains(next.Services, s) {
				next.Services = append(next.Services, s)
			}
		}
		slices.Sort(next.Services)
		if o.At.Before(next.OpenedAt) {
			next.OpenedAt, next.Onset = o.At.UTC(), o.At.UTC()
		}
		if slices.Equal(next.Services, cur.Services) && next.OpenedAt.Equal(cur.OpenedAt) {
			return cur.ID, false, nil
		}
		next.UpdatedAt = b.updatedAt(cur)
		return cur.ID, false, b.notified(b.st.WriteIncident(ctx, next), cur.ID, TriggerUpdate)
	case cur != nil && !cur.ResolvedAt.Before(o.At):
		return cur.ID, false, nil // a late copy of a notification already resolved
	}
	attrs := maps.Clone(o.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[groupKeyAttr] = o.Key
	in := store.Incident{
		ID: alertmanager.IncidentID(o.Key, o.At), Title: o.Title, Status: StatusOpen, Severity: o.Severity,
		Services: slices.Clone(o.Services), OpenedAt: o.At.UTC(), Onset: o.At.UTC(), Attributes: attrs,
	}
	in.UpdatedAt = b.updatedAt(nil)
	return in.ID, true, b.notified(b.st.WriteIncident(ctx, in), in.ID, TriggerOpen)
}

// Resolve resolves the alert group's open incident at at (not before it
// opened); with none open it does nothing and returns "".
func (b *Book) Resolve(ctx context.Context, key string, at time.Time) (string, error) {
	defer b.lock(key)()
	b.state.Lock()
	defer b.state.Unlock()
	cur, err := b.latest(ctx, key)
	if err != nil || cur == nil || cur.Status != StatusOpen {
		return "", err
	}
	next := *cur
	next.Status = StatusResolved
	next.ResolvedAt = at.UTC()
	if next.ResolvedAt.Before(next.OpenedAt) {
		next.ResolvedAt = next.OpenedAt
	}
	next.UpdatedAt = b.updatedAt(cur)
	return cur.ID, b.notified(b.st.WriteIncident(ctx, next), cur.ID, TriggerResolve)
}
