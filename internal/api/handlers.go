package api

import (
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/ingest"
)

// IngestResult is the data of an ingest response.
type IngestResult struct {
	Accepted int                `json:"accepted"`
	Rejected int                `json:"rejected"`
	Errors   []ingest.LineError `json:"errors"`
}

// ingest decodes an NDJSON or JSON-array body of one kind and queues the
// valid records. Bad lines are rejected by line and field; the good ones
// are kept. A body over the limit gets 413: at once when Content-Length
// says so, else when the limit is reached, reporting what was queued
// before (those records are kept).
func (s *Server) ingest(r *http.Request) (any, []string, error) {
	kind, ok := event.ParseKind(r.PathValue("kind"))
	if !ok {
		return nil, nil, &apiError{errBadData, fmt.Errorf("unknown kind %q (want changes, errors, logs, metrics or services)", r.PathValue("kind"))}
	}
	if r.ContentLength > s.opt.MaxBodyBytes {
		return nil, nil, &apiError{errTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d bytes", r.ContentLength, s.opt.MaxBodyBytes)}
	}
	var body io.Reader = http.MaxBytesReader(nil, r.Body, s.opt.MaxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "gzip", "x-gzip":
	default:
		return nil, nil, &apiError{errUnsupportedMedia, fmt.Errorf("unsupported Content-Encoding %q (want gzip or none)", enc)}
	}
	if enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc == "gzip" || enc == "x-gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, nil, &apiError{errBadData, fmt.Errorf("invalid gzip body: %w", err)}
		}
		defer zr.Close()
		// The limit applies to the decompressed size too.
		body = io.LimitReader(gzipBody{zr}, s.opt.MaxBodyBytes+1)
		body = &limitCheck{r: body, n: s.opt.MaxBodyBytes}
	}
	res, err := ingest.Decode(r.Context(), kind, body, ingest.Options{}, func(b *event.Batch) error {
		return s.opt.Writer.Add(r.Context(), b)
	})
	s.metrics.ingested.WithLabelValues(string(kind), "accepted").Add(float64(res.Accepted))
	s.metrics.ingested.WithLabelValues(string(kind), "rejected").Add(float64(res.Rejected))
	out := IngestResult{Accepted: res.Accepted, Rejected: res.Rejected, Errors: res.Errors}
	if out.Errors == nil {
		out.Errors = []ingest.LineError{}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errLimit) {
			return out, nil, &apiError{errTooLarge, fmt.Errorf("body is over the limit of %d bytes; the first %d records were accepted", s.opt.MaxBodyBytes, res.Accepted)}
		}
		var ge gzipError
		if errors.As(err, &ge) {
			return out, nil, &apiError{errBadData, fmt.Errorf("%w; the first %d records were accepted", ge, res.Accepted)}
		}
		// A writer that cannot take more for now (a full spool) says when
		// to come back; the records before were accepted and are kept.
		var ra retryAfter
		if errors.As(err, &ra) {
			return out, nil, &apiError{errUnavailable, retryError{fmt.Errorf("%w; the first %d records were accepted", ra, res.Accepted), ra.RetryAfter()}}
		}
		return out, nil, err
	}
	if res.Rejected > 0 {
		return out, nil, &apiError{errBadData, fmt.Errorf("%d of %d records rejected (the others were accepted); first: %v", res.Rejected, res.Rejected+res.Accepted, firstError(res.Errors))}
	}
	return out, nil, nil
}

func firstError(errs []ingest.LineError) string {
	if len(errs) == 0 {
		return ""
	}
	return errs[0].Error()
}

var errLimit = errors.New("decompressed body over the limit")

// retryAfter is an error of a writer that is temporarily unable to accept
// records (spool.FullError), with the time to wait before retrying.
type retryAfter interface {
	error
	RetryAfter() time.Duration
}

// retryError is a client-safe message with the wait that wrap sends as
// Retry-After.
type retryError struct {
	err   error
	after time.Duration
}

func (e retryError) Error() string             { return e.err.Error() }
func (e retryError) RetryAfter() time.Duration { return e.after }

// gzipError is a corrupt or truncated gzip stream: the client's fault, so
// bad data rather than an internal error.
type gzipError struct{ err error }

func (e gzipError) Error() string { return "invalid gzip body: " + e.err.Error() }
func (e gzipError) Unwrap() error { return e.err }

// gzipBody marks the decompressor's own failures as gzipError; errors of
// the compressed body beneath (its size limit) pass through unchanged.
type gzipBody struct{ zr *gzip.Reader }

func (g gzipBody) Read(p []byte) (int, error) {
	n, err := g.zr.Read(p)
	var ce flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ce) {
		err = gzipError{err}
	}
	return n, err
}

// limitCheck fails once more than n bytes were read.
type limitCheck struct {
	r    io.Reader
	n    int64
	read int64
}

func (l *limitCheck) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.n {
		return n, errLimit
	}
	return n, err
}

// whatChanged answers GET /api/v1/whatchanged?service=S&at=T&lookback=2h[&onset=T].
func (s *Server) whatChanged(r *http.Request) (any, []string, error) {
	if s.opt.Engine == nil {
		return nil, nil, &apiError{errUnavailable, errors.New("no correlation engine configured")}
	}
	q := r.URL.Query()
	now := s.opt.Now()
	query := correlate.Query{Service: q.Get("service"), At: now}
	if query.Service == "" {
		return nil, nil, badParam("service", errors.New("required"))
	}
	var err error
	if v := q.Get("at"); v != "" {
		if query.At, err = correlate.ParseTime(v, now); err != nil {
			return nil, nil, badParam("at", err)
		}
	}
	if v := q.Get("onset"); v != "" {
		if query.Onset, err = correlate.ParseTime(v, now); err != nil {
			return nil, nil, badParam("onset", err)
		}
	}
	if v := q.Get("lookback"); v != "" {
		if query.Lookback, err = correlate.ParseLookback(v); err != nil {
			return nil, nil, badParam("lookback", err)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	ans, err := s.opt.Engine.WhatChanged(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	return ans, nil, nil
}

// impact answers GET /api/v1/impact?service=S[&service=S2|,S2]&from=T&to=T[&onset=T]
// or ?incident=ID: who was hurt in the window.
func (s *Server) impact(r *http.Request) (any, []string, error) {
	if s.opt.Impact == nil {
		return nil, nil, &apiError{errUnavailable, errors.New("no impact analyzer configured")}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	q, err := ImpactQuery(ctx, r.URL.Query(), s.opt.Incidents, s.opt.Now())
	if err != nil {
		return nil, nil, err
	}
	rep, err := s.opt.Impact.Impact(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	return rep, nil, nil
}

// ImpactQuery reads an impact question from URL parameters: service
// (repeated or comma-separated), from, to and onset (RFC 3339, Unix ms,
// now or -30m), or incident. A bad parameter names itself.
func ImpactQuery(ctx context.Context, v url.Values, incidents impact.IncidentReader, now time.Time) (impact.Query, error) {
	if id := v.Get("incident"); id != "" {
		for _, p := range []string{"service", "from", "to", "onset"} {
			if v.Has(p) {
				return impact.Query{}, badParam(p, errors.New("not allowed with incident (the incident sets the window and services)"))
			}
		}
		if incidents == nil {
			return impact.Query{}, &apiError{errUnavailable, errors.New("no incident store configured")}
		}
		q, err := impact.IncidentQuery(ctx, incidents, id, now)
		var bad *impact.IncidentError
		switch {
		case errors.Is(err, impact.ErrUnknownIncident), errors.As(err, &bad):
			return impact.Query{}, badParam("incident", err)
		case err != nil:
			return impact.Query{}, err
		}
		if err := q.Validate(); err != nil {
			return impact.Query{}, badParam("incident", fmt.Errorf("incident %s: %w", id, err))
		}
		return q, nil
	}
	var q impact.Query
	for _, s := range v["service"] {
		for _, one := range strings.Split(s, ",") {
			if one = strings.TrimSpace(one); one != "" && !slices.Contains(q.Services, one) {
				q.Services = append(q.Services, one)
			}
		}
	}
	if len(q.Services) == 0 {
		return impact.Query{}, badParam("service", errors.New("required (or give incident)"))
	}
	for _, p := range []struct {
		name     string
		dst      *time.Time
		required bool
	}{{"from", &q.From, true}, {"to", &q.To, false}, {"onset", &q.Onset, false}} {
		s := v.Get(p.name)
		if s == "" {
			if p.required {
				return impact.Query{}, badParam(p.name, errors.New("required"))
			}
			continue
		}
		t, err := correlate.ParseTime(s, now)
		if err != nil {
			return impact.Query{}, badParam(p.name, err)
		}
		*p.dst = t
	}
	if q.To.IsZero() {
		q.To = now.UTC()
	}
	if err := q.Validate(); err != nil {
		return impact.Query{}, &apiError{errBadData, err}
	}
	return q, nil
}
