package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/config"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/incident"
	"github.com/correlator/correlator/internal/store"
)

// IncidentBook is the incident lifecycle the API serves;
// *incident.Tracker implements it. Its errors classify themselves:
// *incident.FieldError (a bad field, 400), incident.ErrNotFound (404),
// *incident.ConflictError (409); any other is the store's (500).
type IncidentBook interface {
	Open(ctx context.Context, r incident.OpenRequest) (store.Incident, error)
	Update(ctx context.Context, id string, r incident.UpdateRequest) (store.Incident, error)
	Resolve(ctx context.Context, id string, r incident.ResolveRequest) (store.Incident, error)
	Get(ctx context.Context, id string) (*incident.Detail, error)
	List(ctx context.Context, f incident.ListFilter) ([]store.Incident, error)
}

// Error classes of the incident endpoints.
const (
	errNotFound errorType = "not_found"
	errConflict errorType = "conflict"
)

// maxIncidentBody bounds an incident request body: a title, a note and a
// few services.
const maxIncidentBody = 64 << 10

// incidentRoutes registers the incident endpoints: writes need the ingest
// scope (like recording a change), reads the read scope.
func (s *Server) incidentRoutes() {
	s.mux.Handle("POST /api/v1/incidents", s.auth(config.ScopeIngest, s.wrap("incident_open", s.openIncident)))
	s.mux.Handle("GET /api/v1/incidents", s.auth(config.ScopeRead, s.wrap("incident_list", s.listIncidents)))
	s.mux.Handle("GET /api/v1/incidents/{id}", s.auth(config.ScopeRead, s.wrap("incident_get", s.getIncident)))
	s.mux.Handle("PATCH /api/v1/incidents/{id}", s.auth(config.ScopeIngest, s.wrap("incident_update", s.updateIncident)))
	s.mux.Handle("POST /api/v1/incidents/{id}/resolve", s.auth(config.ScopeIngest, s.wrap("incident_resolve", s.resolveIncident)))
}

// OpenIncidentBody is the body of POST /api/v1/incidents. Times are RFC
// 3339, Unix milliseconds, now or -30m, as in the query parameters.
type OpenIncidentBody struct {
	Services []string `json:"services"`
	At       string   `json:"at"`
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
}

// UpdateIncidentBody is the body of PATCH /api/v1/incidents/{id}: the
// fields given change; services, when given, replaces the list.
type UpdateIncidentBody struct {
	Title    string   `json:"title"`
	Severity string   `json:"severity"`
	Services []string `json:"services"`
	Note     string   `json:"note"`
	Cause    string   `json:"cause"`
}

// ResolveIncidentBody is the body of POST /api/v1/incidents/{id}/resolve;
// it may be empty (resolved now, cause unknown).
type ResolveIncidentBody struct {
	At    string `json:"at"`
	Cause string `json:"cause"`
	Note  string `json:"note"`
}

func (s *Server) incidents() (IncidentBook, error) {
	if s.opt.IncidentBook == nil {
		return nil, &apiError{errUnavailable, errors.New("no incident tracker configured")}
	}
	return s.opt.IncidentBook, nil
}

// openIncident answers POST /api/v1/incidents with the opened incident.
func (s *Server) openIncident(r *http.Request) (any, []string, error) {
	book, err := s.incidents()
	if err != nil {
		return nil, nil, err
	}
	var b OpenIncidentBody
	if err := decodeBody(r, &b, false); err != nil {
		return nil, nil, err
	}
	req := incident.OpenRequest{Services: b.Services, Title: b.Title, Severity: b.Severity}
	if req.At, err = bodyTime("at", b.At, s.opt.Now()); err != nil {
		return nil, nil, err
	}
	in, err := book.Open(r.Context(), req)
	return incidentResult(in, err)
}

// updateIncident answers PATCH /api/v1/incidents/{id} with the new state.
func (s *Server) updateIncident(r *http.Request) (any, []string, error) {
	book, err := s.incidents()
	if err != nil {
		return nil, nil, err
	}
	var b UpdateIncidentBody
	if err := decodeBody(r, &b, false); err != nil {
		return nil, nil, err
	}
	in, err := book.Update(r.Context(), r.PathValue("id"), incident.UpdateRequest{
		Title: b.Title, Severity: b.Severity, Services: b.Services, Note: b.Note, Cause: b.Cause,
	})
	return incidentResult(in, err)
}

// resolveIncident answers POST /api/v1/incidents/{id}/resolve with the
// resolved state.
func (s *Server) resolveIncident(r *http.Request) (any, []string, error) {
	book, err := s.incidents()
	if err != nil {
		return nil, nil, err
	}
	var b ResolveIncidentBody
	if err := decodeBody(r, &b, true); err != nil {
		return nil, nil, err
	}
	req := incident.ResolveRequest{Cause: b.Cause, Note: b.Note}
	if req.At, err = bodyTime("at", b.At, s.opt.Now()); err != nil {
		return nil, nil, err
	}
	in, err := book.Resolve(r.Context(), r.PathValue("id"), req)
	return incidentResult(in, err)
}

// getIncident answers GET /api/v1/incidents/{id}: the current state with
// its history and snapshot summaries.
func (s *Server) getIncident(r *http.Request) (any, []string, error) {
	book, err := s.incidents()
	if err != nil {
		return nil, nil, err
	}
	d, err := book.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, nil, incidentError(err)
	}
	return d, nil, nil
}

// listIncidents answers GET /api/v1/incidents[?status=open|resolved]
// [&since=T][&limit=N]: current states, most recently opened first.
func (s *Server) listIncidents(r *http.Request) (any, []string, error) {
	book, err := s.incidents()
	if err != nil {
		return nil, nil, err
	}
	q := r.URL.Query()
	f := incident.ListFilter{Status: q.Get("status")}
	if v := q.Get("since"); v != "" {
		if f.Since, err = correlate.ParseTime(v, s.opt.Now()); err != nil {
			return nil, nil, badParam("since", err)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit <= 0 {
			return nil, nil, badParam("limit", fmt.Errorf("%q is not a positive number", v))
		}
	}
	ins, err := book.List(r.Context(), f)
	if err != nil {
		return nil, nil, incidentError(err)
	}
	return ins, nil, nil
}

func incidentResult(in store.Incident, err error) (any, []string, error) {
	if err != nil {
		return nil, nil, incidentError(err)
	}
	return in, nil, nil
}

// incidentError classifies an error of the IncidentBook.
func incidentError(err error) error {
	var fe *incident.FieldError
	var ce *incident.ConflictError
	switch {
	case errors.As(err, &fe) && fe.Field == "":
		return &apiError{errBadData, fe}
	case errors.As(err, &fe):
		return badParam(fe.Field, errors.New(fe.Reason))
	case errors.Is(err, incident.ErrNotFound):
		return &apiError{errNotFound, err}
	case errors.As(err, &ce):
		return &apiError{errConflict, err}
	}
	return err
}

// bodyTime reads a time field of a body; "" is the zero time.
func bodyTime(field, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := correlate.ParseTime(v, now)
	if err != nil {
		return time.Time{}, badParam(field, err)
	}
	return t, nil
}

// decodeBody decodes one JSON object into dst, strictly: an unknown or
// mistyped field names itself. An empty body is an error unless emptyOK.
func decodeBody(r *http.Request, dst any, emptyOK bool) error {
	if r.ContentLength > maxIncidentBody {
		return &apiError{errTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d bytes", r.ContentLength, maxIncidentBody)}
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxIncidentBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	var te *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF) && emptyOK:
		return nil
	case errors.Is(err, io.EOF):
		return &apiError{errBadData, errors.New("empty body (want a JSON object)")}
	case errors.As(err, &mbe):
		return &apiError{errTooLarge, fmt.Errorf("body is over the limit of %d bytes", maxIncidentBody)}
	case errors.As(err, &te) && te.Field != "":
		return badParam(te.Field, fmt.Errorf("want %s, got %s", jsonType(te.Type.Kind().String()), te.Value))
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return badParam(name, errors.New("unknown field"))
	case err != nil:
		return &apiError{errBadData, fmt.Errorf("invalid JSON body: %w", err)}
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return &apiError{errBadData, errors.New("invalid JSON body: more than one JSON value")}
	}
	return nil
}

// jsonType names a Go kind as JSON calls it.
func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "an array"
	case "string":
		return "a string"
	}
	return kind
}
