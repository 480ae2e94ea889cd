package store

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/correlator/correlator/internal/event"
)

// The reads below serve the Grafana overlay (package grafana), which mirrors
// recent changes and incidents as annotations: it needs them across every
// service, where the engines' reads are scoped to a few.

const changesBetweenQuery = `
SELECT ` + changeReadColumns + `
FROM changes FINAL
WHERE time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
ORDER BY time DESC, id DESC
LIMIT {limit:UInt32}`

// ChangesBetween returns the changes of every service in [from, to), oldest
// first. When there are more than limit, the newest limit are kept: the
// overlay would rather mark this morning's deploys than last week's.
func (s *Store) ChangesBetween(ctx context.Context, from, to time.Time, limit int) ([]event.Change, error) {
	var out []event.Change
	p := map[string]string{"from": ParamTime(from), "to": ParamTime(to), "limit": ParamInt(int64(limit))}
	err := s.query(ctx, "changes_between", changesBetweenQuery, p, func(r Rows) error {
		c, err := scanChange(r)
		out = append(out, c)
		return err
	})
	slices.Reverse(out)
	return out, err
}

// currentIncidentsQuery picks the incidents first (still open, or with a
// state written since since), then reads each one's latest state. An
// incident opened long ago and still open has no recent row, which is why
// the test is on its latest status and not only on updated_at.
const currentIncidentsQuery = `
SELECT ` + incidentColumns + `
FROM incidents
WHERE id IN (
    SELECT id FROM incidents
    GROUP BY id
    HAVING max(updated_at) >= {since:DateTime64(3, 'UTC')} OR argMax(status, updated_at) != 'resolved'
    ORDER BY min(opened_at) DESC, id
    LIMIT {limit:UInt32})
ORDER BY id, updated_at DESC
LIMIT 1 BY id`

// CurrentIncidents returns the current state of every incident that is not
// resolved or has a state written at or after since, most recently opened
// first, at most limit of them.
func (s *Store) CurrentIncidents(ctx context.Context, since time.Time, limit int) ([]Incident, error) {
	out, err := s.incidents(ctx, "current_incidents", currentIncidentsQuery,
		map[string]string{"since": ParamTime(since), "limit": ParamInt(int64(limit))})
	slices.SortFunc(out, func(a, b Incident) int {
		if c := b.OpenedAt.Compare(a.OpenedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, err
}

const latestSnapshotsQuery = `
SELECT ` + snapshotColumns + `
FROM incident_snapshots
WHERE incident_id IN {ids:Array(String)} AND causes != ''
ORDER BY incident_id, taken_at DESC
LIMIT 1 BY incident_id`

// LatestSnapshots returns, for each of the incidents that has one, its
// latest snapshot holding ranked causes: a later snapshot whose ranking
// failed (Causes empty, Error set) does not hide the last ranking known.
func (s *Store) LatestSnapshots(ctx context.Context, incidentIDs []string) (map[string]Snapshot, error) {
	out := map[string]Snapshot{}
	if len(incidentIDs) == 0 {
		return out, nil
	}
	err := s.query(ctx, "latest_snapshots", latestSnapshotsQuery, map[string]string{"ids": ParamStrings(incidentIDs)}, func(r Rows) error {
		sn, err := scanSnapshot(r)
		out[sn.IncidentID] = sn
		return err
	})
	return out, err
}
