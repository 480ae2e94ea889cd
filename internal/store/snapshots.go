package store

import (
	"context"
	"time"
)

// Snapshot is what correlator knew about an incident at TakenAt: the
// ranked causes and the impact as JSON (the API's answers), the queries
// behind them as JSON (a list of QueryRecord), and the error that stopped
// either, if one did. Trigger says why it was taken: "open", "interval",
// "update" or "resolve".
type Snapshot struct {
	IncidentID     string
	TakenAt        time.Time
	Trigger        string
	WindowFrom     time.Time
	WindowTo       time.Time
	Causes, Impact string
	Queries, Error string
}

// WriteSnapshot appends one snapshot of an incident.
func (s *Store) WriteSnapshot(ctx context.Context, sn Snapshot) error {
	return s.insert(ctx, incidentSnapshotsTable, []any{
		[]string{sn.IncidentID}, []time.Time{sn.TakenAt.UTC()}, []string{sn.Trigger},
		[]time.Time{sn.WindowFrom.UTC()}, []time.Time{sn.WindowTo.UTC()},
		[]string{sn.Causes}, []string{sn.Impact}, []string{sn.Queries}, []string{sn.Error},
	})
}

const snapshotsQuery = `
SELECT incident_id, taken_at, trigger, window_from, window_to, causes, impact, queries, error
FROM incident_snapshots
WHERE incident_id = {id:String}
ORDER BY taken_at`

// Snapshots returns every snapshot of the incident, oldest first.
func (s *Store) Snapshots(ctx context.Context, incidentID string) ([]Snapshot, error) {
	var out []Snapshot
	err := s.query(ctx, "incident_snapshots", snapshotsQuery, map[string]string{"id": ParamString(incidentID)}, func(r Rows) error {
		var sn Snapshot
		if err := r.Scan(&sn.IncidentID, &sn.TakenAt, &sn.Trigger, &sn.WindowFrom, &sn.WindowTo, &sn.Causes, &sn.Impact, &sn.Queries, &sn.Error); err != nil {
			return err
		}
		sn.TakenAt, sn.WindowFrom, sn.WindowTo = sn.TakenAt.UTC(), sn.WindowFrom.UTC(), sn.WindowTo.UTC()
		out = append(out, sn)
		return nil
	})
	return out, err
}

// Annotation links one of our objects (Key: "change:ID", "incident:ID")
// to the Grafana annotation made for it; Hash is what was last sent.
type Annotation struct {
	Key      string
	ID       int64
	Hash     string
	SyncedAt time.Time
}

// WriteAnnotation records the Grafana annotation of a key; the latest
// record of a key wins.
func (s *Store) WriteAnnotation(ctx context.Context, a Annotation) error {
	return s.insert(ctx, grafanaAnnotationsTable, []any{
		[]string{a.Key}, []int64{a.ID}, []string{a.Hash}, []time.Time{a.SyncedAt.UTC()},
	})
}

const annotationsQuery = `
SELECT key, annotation_id, hash, synced_at
FROM grafana_annotations FINAL
WHERE key IN {keys:Array(String)}`

// Annotations returns the latest record of each of keys that has one.
func (s *Store) Annotations(ctx context.Context, keys []string) (map[string]Annotation, error) {
	out := map[string]Annotation{}
	if len(keys) == 0 {
		return out, nil
	}
	err := s.query(ctx, "grafana_annotations", annotationsQuery, map[string]string{"keys": ParamStrings(keys)}, func(r Rows) error {
		var a Annotation
		if err := r.Scan(&a.Key, &a.ID, &a.Hash, &a.SyncedAt); err != nil {
			return err
		}
		a.SyncedAt = a.SyncedAt.UTC()
		out[a.Key] = a
		return nil
	})
	return out, err
}

const incidentIDsQuery = `
SELECT id FROM incidents
WHERE updated_at >= {since:DateTime64(3, 'UTC')}
GROUP BY id
ORDER BY min(opened_at) DESC, id
LIMIT {limit:UInt32}`

// RecentIncidentIDs lists the incidents with a state written at or after
// since, most recently opened first, at most limit of them.
func (s *Store) RecentIncidentIDs(ctx context.Context, since time.Time, limit int) ([]string, error) {
	var out []string
	p := map[string]string{"since": ParamTime(since), "limit": ParamInt(int64(limit))}
	err := s.query(ctx, "recent_incident_ids", incidentIDsQuery, p, func(r Rows) error {
		var id string
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
	return out, err
}
