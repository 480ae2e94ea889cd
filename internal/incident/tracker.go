package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
)

// Snapshot triggers: why a snapshot was taken.
const (
	TriggerOpen     = "open"
	TriggerUpdate   = "update"
	TriggerResolve  = "resolve"
	TriggerInterval = "interval"
)

// Attribute keys of an incident (store.Incident.Attributes) this package
// writes.
const (
	// AttrCause is the confirmed cause: a change id, or CauseNone.
	AttrCause = "cause"
)

// CauseNone records that no change caused the incident.
const CauseNone = "none"

// Records is what a Tracker reads and writes; *store.Store implements it.
// The Tracker appends incident states and snapshots and never edits one.
type Records interface {
	Store
	CurrentIncident(ctx context.Context, id string) (store.Incident, bool, error)
	IncidentHistory(ctx context.Context, id string) ([]store.Incident, error)
	ListIncidents(ctx context.Context, f store.IncidentFilter) ([]store.Incident, error)
	WriteSnapshot(ctx context.Context, sn store.Snapshot) error
	Snapshots(ctx context.Context, incidentID string) ([]store.Snapshot, error)
	// ChangeByID checks a confirmed cause.
	ChangeByID(ctx context.Context, id string) (c event.Change, found bool, err error)
}

// Engine ranks the changes behind a symptom; *correlate.Engine implements
// it. It reads the store under the context it is given, so that
// store.RecordQueries sees its reads.
type Engine interface {
	WhatChanged(ctx context.Context, q correlate.Query) (*correlate.Answer, error)
}

// Analyzer estimates who an incident hurt; *impact.Analyzer implements it,
// reading the store under the context it is given.
type Analyzer interface {
	Impact(ctx context.Context, q impact.Query) (impact.Report, error)
}

// Options configure a Tracker. Every field is optional.
type Options struct {
	// Engine and Analyzer compute the two halves of a snapshot; a nil one
	// leaves its half empty with an error saying so.
	Engine   Engine
	Analyzer Analyzer
	// Interval is how often Run snapshots every open incident; default 5m.
	Interval time.Duration
	// Lookback is how far before an incident's start the causes are
	// looked for; default 2h, as `correlator whatchanged`.
	Lookback time.Duration
	// MaxAge stops interval snapshots of an incident open longer than it
	// (one forgotten, not resolved); default impact.MaxWindow (7 days),
	// beyond which impact cannot be estimated anyway.
	MaxAge time.Duration
	// SnapshotTimeout bounds one snapshot; default 2m. A snapshot runs to
	// the end even when the request that caused it is gone.
	SnapshotTimeout time.Duration
	// OnResolve is called once a resolve is stored and its snapshot
	// written (and again when a resolved incident's cause changes), with
	// the resolved state (the post-mortem bundle and the
	// Grafana sync hang here). It runs in the resolving call (API request,
	// CLI) or, for an incident an alert resolved, in Run; it must hand
	// long work off. A panic in it is logged; it never fails the resolve.
	OnResolve func(ctx context.Context, in store.Incident)
	// OnChange is called after every state stored and snapshotted (open,
	// update, resolve, an alert's, an attribute set), with the incident's
	// id; the Grafana overlay re-syncs the incident's annotation here. It
	// must not block.
	OnChange func(id string)
	// LiveLink, when set, is the link to an incident's live page that Get
	// hands to whoever may read the incident (a signed link, which opens
	// the page without a token: it is given out, never stored).
	LiveLink func(in store.Incident) string
	Logger   *slog.Logger
	// Now and Rand are the clock and the randomness of new ids, for tests.
	Now  func() time.Time
	Rand io.Reader
}

// Tracker is the person-facing life of incidents: open, update, resolve,
// read, with snapshots of the causes and the impact at each step and, in
// Run, at an interval while open. It is safe for concurrent use. One
// Tracker per store is assumed for writes: two processes updating one
// incident at the same moment both append a state, and the later one
// wins as the current state (both stay in the history).
type Tracker struct {
	st  Records
	opt Options
	log *slog.Logger
	// state serialises read-current-state-then-write in this process; the
	// Tracker's Book shares it.
	state sync.Mutex
	// jobs queues the snapshots the Book asks for, taken by Run.
	jobs chan job
}

// job is a snapshot Run takes for the Book.
type job struct{ id, trigger string }

// NewTracker returns a Tracker over st.
func NewTracker(st Records, opt Options) *Tracker {
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Minute
	}
	if opt.Lookback <= 0 {
		opt.Lookback = 2 * time.Hour
	}
	if opt.MaxAge <= 0 {
		opt.MaxAge = impact.MaxWindow
	}
	if opt.SnapshotTimeout <= 0 {
		opt.SnapshotTimeout = 2 * time.Minute
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	return &Tracker{st: st, opt: opt, log: opt.Logger.With("component", "incidents"), jobs: make(chan job, 256)}
}

// Book returns a Book (the Alertmanager receiver's Incidents) over the
// Tracker's store whose incidents are snapshotted like the Tracker's:
// Run takes the snapshot of each state the Book writes, and calls
// OnResolve after an alert resolves one. Without Run they are not taken
// (the queue is bounded; beyond it a snapshot is skipped and logged, and
// the next interval takes one).
func (t *Tracker) Book() *Book {
	b := NewBook(t.st)
	b.now = t.opt.Now
	b.state = &t.state
	b.notify = func(id, trigger string) {
		select {
		case t.jobs <- job{id, trigger}:
		default:
			t.log.Warn("snapshot queue full: skipped", "incident", id, "trigger", trigger)
		}
	}
	return b
}

// NotFoundError is an incident id with no stored state. It matches
// ErrNotFound with errors.Is.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string     { return fmt.Sprintf("no incident %q", e.ID) }
func (e *NotFoundError) Is(err error) bool { return err == ErrNotFound }

// ErrNotFound is matched by every NotFoundError.
var ErrNotFound = errors.New("no such incident")

// ConflictError is a request the incident's state does not allow, such as
// resolving a resolved incident.
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

// FieldError is a request field with a bad value. Field is the request's
// JSON name (services, at, title, severity, note, cause, status, limit),
// or "" for a request wrong as a whole (an update that changes nothing);
// Error reads "FIELD: REASON".
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func fieldErr(field, format string, a ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// OpenRequest declares an incident.
type OpenRequest struct {
	// Services are the symptomatic services, the first the one asked about
	// first (see Snapshot). At least one.
	Services []string `json:"services"`
	// At is the onset, when the trouble began; zero means now. Not in the
	// future, at most impact.MaxWindow ago.
	At       time.Time `json:"at,omitzero"`
	Title    string    `json:"title"`
	Severity string    `json:"severity,omitempty"`
}

// UpdateRequest changes an incident. Only the fields set change; at least
// one must be. An update of a resolved incident is kept too (a cause
// confirmed in the post-mortem), but takes no snapshot.
type UpdateRequest struct {
	Title    string `json:"title,omitempty"`
	Severity string `json:"severity,omitempty"`
	// Services, when not nil, replaces the services.
	Services []string `json:"services,omitempty"`
	// Note records an action taken ("rolled back api to v41"); each note
	// is its own state, kept in the history.
	Note string `json:"note,omitempty"`
	// Cause records the confirmed cause: a stored change's id, or "none".
	Cause string `json:"cause,omitempty"`
}

// ResolveRequest resolves an incident.
type ResolveRequest struct {
	// At is when it ended; zero means now. Not before the onset, not in
	// the future.
	At time.Time `json:"at,omitzero"`
	// Cause is the confirmed cause: "" (not known), a stored change's id,
	// or "none" (no change caused it).
	Cause string `json:"cause,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Limits of request fields.
const (
	maxTitle   = 200
	maxNote    = 4000
	maxService = 128
	maxFuture  = time.Minute // clock skew allowed between a client and us
)

// severityRE admits the levels teams use (P1, sev2, page, critical).
var severityRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// text checks a free-text field: at most max characters, no control
// characters (newlines only where multiline).
func text(field, s string, max int, multiline bool) (string, error) {
	s = strings.TrimSpace(s)
	if n := len([]rune(s)); n > max {
		return "", fieldErr(field, "%d characters, more than %d", n, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return "", fieldErr(field, "contains the control character %U", r)
		}
	}
	return s, nil
}

func checkSeverity(s string) error {
	if !severityRE.MatchString(s) {
		return fieldErr("severity", "%q is not a severity (want a short name such as P1, sev2 or page: letters, digits, _ . -, at most 32)", s)
	}
	return nil
}

// services checks and deduplicates a service list, keeping its order.
func services(in []string) ([]string, error) {
	var out []string
	for i, s := range in {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			return nil, fieldErr("services", "entry %d is empty", i)
		case len(s) > maxService:
			return nil, fieldErr("services", "entry %d is longer than %d bytes", i, maxService)
		case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return nil, fieldErr("services", "entry %d (%q) contains white space", i, s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fieldErr("services", "none given (name at least one service)")
	}
	return out, nil
}

// checkCause accepts "none" or the id of a stored change.
func (t *Tracker) checkCause(ctx context.Context, cause string) error {
	if cause == CauseNone {
		return nil
	}
	_, found, err := t.st.ChangeByID(ctx, cause)
	if err != nil {
		return fmt.Errorf("check cause: %w", err)
	}
	if !found {
		return fieldErr("cause", "no change with id %q (give a change id from the ranking, or none)", cause)
	}
	return nil
}

// current reads an incident's current state.
func (t *Tracker) current(ctx context.Context, id string) (store.Incident, error) {
	in, found, err := t.st.CurrentIncident(ctx, id)
	if err != nil {
		return store.Incident{}, fmt.Errorf("read incident %s: %w", id, err)
	}
	if !found {
		return store.Incident{}, &NotFoundError{ID: id}
	}
	return in, nil
}

// newID returns a readable id free in the store: inc-DATE-TIME-XXXX, the
// opening minute in UTC and 16 random bits, drawn again on a clash. The
// caller holds t.state, so two opens of this process cannot draw one id.
func (t *Tracker) newID(ctx context.Context, at time.Time) (string, error) {
	for range 16 {
		var b [2]byte
		if _, err := io.ReadFull(t.opt.Rand, b[:]); err != nil {
			return "", fmt.Errorf("draw incident id: %w", err)
		}
		id := "inc-" + at.UTC().Format("20060102-1504") + "-" + hex.EncodeToString(b[:])
		_, found, err := t.st.CurrentIncident(ctx, id)
		if err != nil {
			return "", fmt.Errorf("check incident id: %w", err)
		}
		if !found {
			return id, nil
		}
	}
	return "", errors.New("draw incident id: every draw was taken")
}

// Open declares an incident, stores it, and takes its first snapshot.
func (t *Tracker) Open(ctx context.Context, r OpenRequest) (store.Incident, error) {
	now := t.opt.Now().UTC().Truncate(time.Millisecond)
	svcs, err := services(r.Services)
	if err != nil {
		return store.Incident{}, err
	}
	title, err := text("title", r.Title, maxTitle, false)
	if err != nil {
		return store.Incident{}, err
	}
	if title == "" {
		return store.Incident{}, fieldErr("title", "required (say what is wrong, such as \"checkout 5xx above 5%%\")")
	}
	if r.Severity != "" {
		if err := checkSeverity(r.Severity); err != nil {
			return store.Incident{}, err
		}
	}
	onset := r.At.UTC().Truncate(time.Millisecond)
	switch {
	case r.At.IsZero():
		onset = now
	case onset.After(now.Add(maxFuture)):
		return store.Incident{}, fieldErr("at", "%s is in the future", onset.Format(time.RFC3339))
	case now.Sub(onset) > impact.MaxWindow:
		return store.Incident{}, fieldErr("at", "%s is more than %d days ago (impact cannot be estimated over longer)", onset.Format(time.RFC3339), int(impact.MaxWindow.Hours()/24))
	case onset.After(now):
		onset = now // within the skew allowed
	}
	in := store.Incident{
		Title: title, Status: StatusOpen, Severity: r.Severity, Services: svcs,
		OpenedAt: now, Onset: onset, UpdatedAt: now, Attributes: map[string]string{},
	}
	t.state.Lock()
	in.ID, err = t.newID(ctx, now)
	if err == nil {
		err = t.st.WriteIncident(ctx, in)
	}
	t.state.Unlock()
	if err != nil {
		return store.Incident{}, fmt.Errorf("open incident: %w", err)
	}
	t.log.Info("incident opened", "incident", in.ID, "services", svcs)
	t.after(ctx, in, TriggerOpen)
	return in, nil
}

// Update appends a state with the request's changes to the incident's
// current one, and snapshots it when it is open.
func (t *Tracker) Update(ctx context.Context, id string, r UpdateRequest) (store.Incident, error) {
	title, err := text("title", r.Title, maxTitle, false)
	if err != nil {
		return store.Incident{}, err
	}
	note, err := text("note", r.Note, maxNote, true)
	if err != nil {
		return store.Incident{}, err
	}
	var svcs []string
	if r.Services != nil {
		if svcs, err = services(r.Services); err != nil {
			return store.Incident{}, err
		}
	}
	if r.Severity != "" {
		if err := checkSeverity(r.Severity); err != nil {
			return store.Incident{}, err
		}
	}
	if title == "" && note == "" && r.Severity == "" && svcs == nil && r.Cause == "" {
		return store.Incident{}, fieldErr("", "nothing to change (give title, severity, services, note or cause)")
	}
	if r.Cause != "" {
		if err := t.checkCause(ctx, r.Cause); err != nil {
			return store.Incident{}, err
		}
	}
	t.state.Lock()
	cur, err := t.current(ctx, id)
	if err != nil {
		t.state.Unlock()
		return store.Incident{}, err
	}
	next := nextState(cur)
	if title != "" {
		next.Title = title
	}
	if r.Severity != "" {
		next.Severity = r.Severity
	}
	if svcs != nil {
		next.Services = svcs
	}
	if r.Cause != "" {
		next.Attributes[AttrCause] = r.Cause
	}
	// A note belongs to the state it came with: a later state without one
	// does not repeat it.
	next.Note = note
	next.UpdatedAt = nextUpdate(t.opt.Now(), &cur)
	err = t.st.WriteIncident(ctx, next)
	t.state.Unlock()
	if err != nil {
		return store.Incident{}, fmt.Errorf("update incident %s: %w", id, err)
	}
	t.log.Info("incident updated", "incident", id)
	if next.Status == StatusOpen {
		t.after(ctx, next, TriggerUpdate)
	} else {
		// A resolved incident is not snapshotted again, but its news
		// still reaches the outlets; a cause confirmed (or corrected)
		// after the resolve runs OnResolve again, so the post-mortem
		// bundle names it.
		if next.Attributes[AttrCause] != cur.Attributes[AttrCause] {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opt.SnapshotTimeout)
			t.resolvedHook(hctx, next)
			cancel()
		}
		t.changed(id)
	}
	return next, nil
}

// Resolve appends the resolved state, snapshots it, then calls OnResolve.
// Resolving a resolved incident is a ConflictError.
func (t *Tracker) Resolve(ctx context.Context, id string, r ResolveRequest) (store.Incident, error) {
	note, err := text("note", r.Note, maxNote, true)
	if err != nil {
		return store.Incident{}, err
	}
	if r.Cause != "" {
		if err := t.checkCause(ctx, r.Cause); err != nil {
			return store.Incident{}, err
		}
	}
	t.state.Lock()
	next, err := t.resolved(ctx, id, r, note)
	if err == nil {
		err = t.st.WriteIncident(ctx, next)
		if err != nil {
			err = fmt.Errorf("resolve incident %s: %w", id, err)
		}
	}
	t.state.Unlock()
	if err != nil {
		return store.Incident{}, err
	}
	t.log.Info("incident resolved", "incident", id, "cause", r.Cause)
	t.after(ctx, next, TriggerResolve)
	return next, nil
}

// resolved builds the resolved state from the current one; t.state is
// held.
func (t *Tracker) resolved(ctx context.Context, id string, r ResolveRequest, note string) (store.Incident, error) {
	cur, err := t.current(ctx, id)
	if err != nil {
		return store.Incident{}, err
	}
	if cur.Status == StatusResolved {
		return store.Incident{}, &ConflictError{fmt.Sprintf("incident %s is already resolved (at %s); to record its cause, update it with cause", id, cur.ResolvedAt.Format(time.RFC3339))}
	}
	now := t.opt.Now().UTC()
	at := r.At.UTC().Truncate(time.Millisecond)
	start := cur.Onset
	if start.IsZero() || cur.OpenedAt.Before(start) {
		start = cur.OpenedAt
	}
	switch {
	case r.At.IsZero():
		at = now.Truncate(time.Millisecond)
	case at.After(now.Add(maxFuture)):
		return store.Incident{}, fieldErr("at", "%s is in the future", at.Format(time.RFC3339))
	case at.Before(start):
		return store.Incident{}, fieldErr("at", "%s is before the incident began (%s)", at.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	next := nextState(cur)
	next.Status = StatusResolved
	next.ResolvedAt = at
	next.Note = note
	if r.Cause != "" {
		next.Attributes[AttrCause] = r.Cause
	}
	next.UpdatedAt = nextUpdate(now, &cur)
	return next, nil
}

// after takes the snapshot of a state just stored and, for a resolve,
// calls OnResolve. Neither can fail the call that stored the state: the
// state is kept whatever happens here, and both run to the end even if
// the caller's context ends (the snapshot is what the post-mortem shows).
func (t *Tracker) after(ctx context.Context, in store.Incident, trigger string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opt.SnapshotTimeout)
	defer cancel()
	if _, err := t.Snapshot(ctx, in.ID, trigger); err != nil {
		t.log.Error("snapshot failed", "incident", in.ID, "trigger", trigger, "err", err)
	}
	if trigger == TriggerResolve {
		t.resolvedHook(ctx, in)
	}
	t.changed(in.ID)
}

// nextState starts the state after cur: a copy with its own attributes,
// so that changing them leaves cur (a stored state) as it was.
func nextState(cur store.Incident) store.Incident {
	next := cur
	next.Attributes = maps.Clone(cur.Attributes)
	if next.Attributes == nil {
		next.Attributes = map[string]string{}
	}
	return next
}

// changed calls OnChange.
func (t *Tracker) changed(id string) {
	if t.opt.OnChange != nil {
		t.opt.OnChange(id)
	}
}

// SetAttributes appends a state of the incident with attrs merged into
// its attributes (an empty value deletes one) and note, without a
// snapshot: a fact about the incident (where its post-mortem is), not a
// change of what is known about its causes. When the attributes already
// hold those values and there is no note, nothing is written and the
// current state is returned.
func (t *Tracker) SetAttributes(ctx context.Context, id string, attrs map[string]string, note string) (store.Incident, error) {
	t.state.Lock()
	cur, err := t.current(ctx, id)
	if err != nil {
		t.state.Unlock()
		return store.Incident{}, err
	}
	same := note == ""
	for k, v := range attrs {
		same = same && cur.Attributes[k] == v
	}
	if same {
		t.state.Unlock()
		return cur, nil
	}
	next := nextState(cur)
	for k, v := range attrs {
		if v == "" {
			delete(next.Attributes, k)
		} else {
			next.Attributes[k] = v
		}
	}
	next.Note = note
	next.UpdatedAt = nextUpdate(t.opt.Now(), &cur)
	err = t.st.WriteIncident(ctx, next)
	t.state.Unlock()
	if err != nil {
		return store.Incident{}, fmt.Errorf("update incident %s: %w", id, err)
	}
	t.changed(id)
	return next, nil
}

// resolvedHook calls OnResolve, logging a panic instead of passing it on.
func (t *Tracker) resolvedHook(ctx context.Context, in store.Incident) {
	if t.opt.OnResolve == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			t.log.Error("resolve hook failed", "incident", in.ID, "err", fmt.Sprint(p))
		}
	}()
	t.opt.OnResolve(ctx, in)
}

// Detail is an incident as Get returns it: its current state, every state
// oldest first, and a summary of every snapshot oldest first.
type Detail struct {
	store.Incident
	History   []store.Incident  `json:"history"`
	Snapshots []SnapshotSummary `json:"snapshots"`
	// LiveURL is the live page's link to share in the incident channel
	// (signed when links are; see Options.LiveLink), or "".
	LiveURL string `json:"live_url,omitempty"`
}

// Get returns the incident's current state, history and snapshots.
func (t *Tracker) Get(ctx context.Context, id string) (*Detail, error) {
	hist, err := t.st.IncidentHistory(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read incident %s: %w", id, err)
	}
	if len(hist) == 0 {
		return nil, &NotFoundError{ID: id}
	}
	sns, err := t.st.Snapshots(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read snapshots of %s: %w", id, err)
	}
	d := &Detail{Incident: hist[len(hist)-1], History: hist, Snapshots: make([]SnapshotSummary, 0, len(sns))}
	if t.opt.LiveLink != nil {
		d.LiveURL = t.opt.LiveLink(d.Incident)
	}
	for _, sn := range sns {
		d.Snapshots = append(d.Snapshots, Summarize(sn))
	}
	return d, nil
}

// ListFilter selects incidents for List.
type ListFilter struct {
	// Status is "", "open" or "resolved".
	Status string
	// Since keeps incidents with a state written at or after it.
	Since time.Time
	// Limit bounds the list, 1 to 1000; 0 means 100.
	Limit int
}

// List returns the current state of the incidents f selects, most
// recently opened first.
func (t *Tracker) List(ctx context.Context, f ListFilter) ([]store.Incident, error) {
	switch f.Status {
	case "", StatusOpen, StatusResolved:
	default:
		return nil, fieldErr("status", "unknown status %q (want open or resolved)", f.Status)
	}
	switch {
	case f.Limit == 0:
		f.Limit = 100
	case f.Limit < 0 || f.Limit > 1000:
		return nil, fieldErr("limit", "%d is not between 1 and 1000", f.Limit)
	}
	out, err := t.st.ListIncidents(ctx, store.IncidentFilter{Status: f.Status, Since: f.Since, Limit: f.Limit})
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	if out == nil {
		out = []store.Incident{}
	}
	return out, nil
}
