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

// snapshotColumns are the columns scanSnapshot reads, in its order.
const snapshotColumns = `incident_id, taken_at, trigger, window_from, window_to, causes, impact, queries, error`

// scanSnapshot reads one row of snapshotColumns.
func scanSnapshot(r Rows) (Snapshot, error) {
	var sn Snapshot
	if err := r.Scan(&sn.IncidentID, &sn.TakenAt, &sn.Trigger, &sn.WindowFrom, &sn.WindowTo, &sn.Causes, &sn.Impact, &sn.Queries, &sn.Error); err != nil {
		return sn, err
	}
	sn.TakenAt, sn.WindowFrom, sn.WindowTo = sn.TakenAt.UTC(), sn.WindowFrom.UTC(), sn.WindowTo.UTC()
	return sn, nil
}

const snapshotsQuery = `
SELECT ` + snapshotColumns + `
FROM incident_snapshots
WHERE incident_id = {id:String}
ORDER BY taken_at`

// Snapshots returns every snapshot of the incident, oldest first.
func (s *Store) Snapshots(ctx context.Context, incidentID string) ([]Snapshot, error) {
	var out []Snapshot
	err := s.query(ctx, "incident_snapshots", snapshotsQuery, map[string]string{"id": ParamString(incidentID)}, func(r Rows) error {
		sn, err := scanSnapshot(r)
		out = append(out, sn)
		return err
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
