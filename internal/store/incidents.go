package store

import (
	"context"
	"time"
)

// Incident is one state of an incident: the incidents table keeps a row
// per update, and the current state is the row with the latest UpdatedAt.
type Incident struct {
	ID, Title, Status, Severity string
	Services                    []string
	OpenedAt, Onset, ResolvedAt time.Time
	UpdatedAt                   time.Time
	Note                        string
	Attributes                  map[string]string
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
		in.OpenedAt, in.Onset, in.ResolvedAt, in.UpdatedAt = in.OpenedAt.UTC(), in.Onset.UTC(), in.ResolvedAt.UTC(), in.UpdatedAt.UTC()
		out = append(out, in)
		return nil
	})
	return out, err
}
