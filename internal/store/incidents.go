package store

import (
	"context"
	"math"
	"time"
)

// Incident is one state of an incident: the incidents table keeps a row
// per update, and the current state is the row with the latest UpdatedAt.
// Read back, a time never set (ResolvedAt while open) is the zero time,
// not the epoch the column stores for it.
type Incident struct {
	ID         string            `json:"id"`
	Title      string            `json:"title"`
	Status     string            `json:"status"`
	Severity   string            `json:"severity"`
	Services   []string          `json:"services"`
	OpenedAt   time.Time         `json:"opened_at"`
	Onset      time.Time         `json:"onset,omitzero"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Note       string            `json:"note,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// WriteIncident appends one state of an incident; nothing is updated in
// place, so every state stays in the history.
func (s *Store) WriteIncident(ctx context.Context, in Incident) error {
	return s.insert(ctx, incidentsTable, []any{
		[]string{in.ID}, []string{in.Title}, [][]string{nonNilStrings(in.Services)}, []string{in.Status}, []string{in.Severity},
		[]time.Time{in.OpenedAt.UTC()}, []time.Time{in.Onset.UTC()}, []time.Time{in.ResolvedAt.UTC()}, []time.Time{in.UpdatedAt.UTC()},
		[]string{in.Note}, []map[string]string{nonNil(in.Attributes)},
	})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const incidentColumns = `id, title, services, status, severity, opened_at, onset, resolved_at, updated_at, note, attributes`

const incidentsByAttributeQuery = `
SELECT ` + incidentColumns + `
FROM incidents
WHERE id IN (SELECT id FROM incidents WHERE attributes[{key:String}] = {value:String})
ORDER BY id, updated_at DESC
LIMIT 1 BY id`

// IncidentsByAttribute returns the current state of every incident one of
// whose states carried attribute key = value (for example the Alertmanager
// group key), in no particular order.
func (s *Store) IncidentsByAttribute(ctx context.Context, key, value string) ([]Incident, error) {
	return s.incidents(ctx, "incidents_by_attribute", incidentsByAttributeQuery, map[string]string{"key": ParamString(key), "value": ParamString(value)})
}

const incidentHistoryQuery = `
SELECT ` + incidentColumns + `
FROM incidents
WHERE id = {id:String}
ORDER BY updated_at`

// IncidentHistory returns every state of the incident, oldest first.
func (s *Store) IncidentHistory(ctx context.Context, id string) ([]Incident, error) {
	return s.incidents(ctx, "incident_history", incidentHistoryQuery, map[string]string{"id": ParamString(id)})
}

func (s *Store) incidents(ctx context.Context, name, q string, p map[string]string) ([]Incident, error) {
	var out []Incident
	err := s.query(ctx, name, q, p, func(r Rows) error {
		var in Incident
		if err := r.Scan(&in.ID, &in.Title, &in.Services, &in.Status, &in.Severity, &in.OpenedAt, &in.Onset, &in.ResolvedAt, &in.UpdatedAt, &in.Note, &in.Attributes); err != nil {
			return err
		}
		in.OpenedAt, in.Onset, in.ResolvedAt, in.UpdatedAt = unset(in.OpenedAt), unset(in.Onset), unset(in.ResolvedAt), unset(in.UpdatedAt)
		out = append(out, in)
		return nil
	})
	return out, err
}

// unset turns the epoch, which the table stores for a time never set, back
// into the zero time, so that readers can use IsZero; other times are
// returned in UTC.
func unset(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t.UTC()
}

const currentIncidentQuery = `
SELECT ` + incidentColumns + `
FROM incidents
WHERE id = {id:String}
ORDER BY updated_at DESC
LIMIT 1`

// CurrentIncident returns the incident's latest state; found is false when
// no state of the id was ever written.
func (s *Store) CurrentIncident(ctx context.Context, id string) (in Incident, found bool, err error) {
	all, err := s.incidents(ctx, "current_incident", currentIncidentQuery, map[string]string{"id": ParamString(id)})
	if err != nil || len(all) == 0 {
		return Incident{}, false, err
	}
	return all[0], true, nil
}

// IncidentFilter selects incidents by their current state. The zero value
// selects every incident.
type IncidentFilter struct {
	// Status keeps incidents whose current status is this; "" keeps all.
	Status string
	// Since keeps incidents with a state written at or after it (their
	// current state then is); zero keeps all.
	Since time.Time
	// Attribute keeps incidents whose current state has a non-empty value
	// for this attribute key (such as "cause"); "" keeps all.
	Attribute string
	// Limit bounds the result; 0 means no bound.
	Limit int
}

// listIncidentsQuery takes each incident's latest state among its states
// since since (which is its current state: states only accumulate), then
// filters on it. The incidents of a shard are whole (sharded by id), so
// LIMIT 1 BY id is exact on a cluster too.
const listIncidentsQuery = `
SELECT ` + incidentColumns + `
FROM (
  SELECT ` + incidentColumns + `
  FROM incidents
  WHERE updated_at >= {since:DateTime64(3, 'UTC')}
  ORDER BY id, updated_at DESC
  LIMIT 1 BY id)
WHERE ({status:String} = '' OR status = {status:String})
  AND ({attribute:String} = '' OR attributes[{attribute:String}] != '')
ORDER BY opened_at DESC, id
LIMIT {limit:UInt64}`

// ListIncidents returns the current state of the incidents f selects,
// most recently opened first.
func (s *Store) ListIncidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	since := f.Since
	if since.Unix() < 0 {
		since = time.Unix(0, 0) // the column's range starts at the epoch
	}
	limit := int64(math.MaxInt64)
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	p := map[string]string{
		"since": ParamTime(since), "status": ParamString(f.Status),
		"attribute": ParamString(f.Attribute), "limit": ParamInt(limit),
	}
	return s.incidents(ctx, "list_incidents", listIncidentsQuery, p)
}
