package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/collectors/alertmanager"
	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

// now is the tests' clock: the incidents happen around it.
var now = time.Date(2026, 11, 21, 19, 50, 0, 0, time.UTC)

// clock returns a Now that starts at now and advances a second a call,
// safe for the Run goroutine.
func clock() func() time.Time {
	var mu sync.Mutex
	t := now
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// production writes two services' changes: api deploys v42 twenty
// minutes before now (the culprit of these tests), and db's config change
// an hour before.
func production(t *testing.T, st *store.Store) {
	t.Helper()
	b := &event.Batch{Changes: []event.Change{
		{ID: "chg-api-v42", Time: now.Add(-20 * time.Minute), Kind: event.ChangeDeploy, Service: "api", Version: "v42", PreviousVersion: "v41"},
		{ID: "chg-db-cfg", Time: now.Add(-time.Hour), Kind: event.ChangeConfig, Service: "db", Title: "pool size 50"},
	}, Services: []event.Service{{Service: "api", DependsOn: []string{"db"}}, {Service: "db"}}}
	if err := st.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// realTracker is a Tracker with the real engine and analyzer.
func realTracker(st *store.Store, opt Options) *Tracker {
	opt.Engine = correlate.New(st, correlate.Options{})
	opt.Analyzer = impact.New(st, impact.Config{})
	if opt.Now == nil {
		opt.Now = clock()
	}
	return NewTracker(st, opt)
}

func queries(t *testing.T, sn store.Snapshot) SnapshotQueries {
	t.Helper()
	var q SnapshotQueries
	if err := json.Unmarshal([]byte(sn.Queries), &q); err != nil {
		t.Fatalf("snapshot queries %q: %v", sn.Queries, err)
	}
	return q
}

func names(recs []store.QueryRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Name)
	}
	return out
}

var idRE = regexp.MustCompile(`^inc-\d{8}-\d{4}-[0-9a-f]{4}$`)

func TestOpenIDsAreReadableAndUnique(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	tr := NewTracker(st, Options{Now: func() time.Time { return now }})
	seen := map[string]bool{}
	for i := range 12 {
		in, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "errors"})
		if err != nil {
			t.Fatal(err)
		}
		if !idRE.MatchString(in.ID) || !strings.HasPrefix(in.ID, "inc-20261121-1950-") {
			t.Errorf("id %q is not inc-20261121-1950-XXXX", in.ID)
		}
		if seen[in.ID] {
			t.Fatalf("open %d: id %s drawn twice", i, in.ID)
		}
		seen[in.ID] = true
	}
	// A draw that clashes with a stored incident is drawn again.
	tr = NewTracker(st, Options{Now: func() time.Time { return now }, Rand: bytes.NewReader([]byte{0xab, 0x12, 0xab, 0x12, 0xcd, 0x34})})
	first, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "a"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "inc-20261121-1950-ab12" || second.ID != "inc-20261121-1950-cd34" {
		t.Errorf("ids %s, %s; want ab12 then, on the clash, cd34", first.ID, second.ID)
	}
}

// TestLifecycle opens, updates and resolves an incident over the real
// engine and analyzer: every step is a new state, the first state is
// never edited, and each step leaves a snapshot with both halves and the
// reads behind them.
func TestLifecycle(t *testing.T) {
	st := storetest.Embedded(t)
	production(t, st)
	ctx := context.Background()
	var hooked []store.Incident
	var hookSaw []string
	tr := realTracker(st, Options{OnResolve: func(ctx context.Context, in store.Incident) {
		hooked = append(hooked, in)
		// The resolve snapshot is stored before the hook runs.
		sns, _ := st.Snapshots(ctx, in.ID)
		for _, sn := range sns {
			hookSaw = append(hookSaw, sn.Trigger)
		}
	}})
	onset := now.Add(-10 * time.Minute)
	in, err := tr.Open(ctx, OpenRequest{Services: []string{"api", "web"}, At: onset, Title: "checkout 5xx", Severity: "P2"})
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != StatusOpen || !in.Onset.Equal(onset) || !in.OpenedAt.After(onset) || in.Severity != "P2" {
		t.Errorf("opened %+v", in)
	}
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Note: "rolled back api to v41", Severity: "P1"}); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Resolve(ctx, in.ID, ResolveRequest{Cause: "chg-api-v42", Note: "error rate back to baseline"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusResolved || res.Attributes[AttrCause] != "chg-api-v42" || res.ResolvedAt.IsZero() {
		t.Errorf("resolved %+v", res)
	}

	d, err := tr.Get(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := d.History
	if len(h) != 3 {
		t.Fatalf("history has %d states, want 3: %+v", len(h), h)
	}
	if h[0].Severity != "P2" || h[0].Note != "" || h[0].Status != StatusOpen {
		t.Errorf("the first state changed: %+v", h[0])
	}
	if h[1].Severity != "P1" || h[1].Note != "rolled back api to v41" || h[1].Status != StatusOpen || !slices.Equal(h[1].Services, []string{"api", "web"}) {
		t.Errorf("update state = %+v", h[1])
	}
	if h[2].Note != "error rate back to baseline" || h[2].Severity != "P1" || d.Status != StatusResolved || d.Attributes[AttrCause] != "chg-api-v42" {
		t.Errorf("resolve state = %+v, current %+v", h[2], d.Incident)
	}
	if !(h[0].UpdatedAt.Before(h[1].UpdatedAt) && h[1].UpdatedAt.Before(h[2].UpdatedAt)) {
		t.Errorf("states not in order: %v %v %v", h[0].UpdatedAt, h[1].UpdatedAt, h[2].UpdatedAt)
	}

	sns, err := st.Snapshots(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for _, sn := range sns {
		triggers = append(triggers, sn.Trigger)
		if sn.Causes == "" || sn.Impact == "" || sn.Error != "" {
			t.Errorf("%s snapshot: causes %d bytes, impact %d bytes, error %q; want both halves", sn.Trigger, len(sn.Causes), len(sn.Impact), sn.Error)
		}
		var a correlate.Answer
		if err := json.Unmarshal([]byte(sn.Causes), &a); err != nil || a.Service != "api" || len(a.Candidates) == 0 {
			t.Errorf("%s snapshot causes: %v, %+v", sn.Trigger, err, a)
		}
		var r impact.Report
		if err := json.Unmarshal([]byte(sn.Impact), &r); err != nil || !r.Window.From.Equal(onset) || r.Window.Incident != in.ID {
			t.Errorf("%s snapshot impact: %v, window %+v", sn.Trigger, err, r.Window)
		}
		if !sn.WindowFrom.Equal(onset) || !sn.WindowTo.After(onset) {
			t.Errorf("%s snapshot window %v → %v, want from the onset %v", sn.Trigger, sn.WindowFrom, sn.WindowTo, onset)
		}
		// The SQL reads as written, to be pasted into a client.
		if !strings.Contains(sn.Queries, "time >= {from:DateTime64") || strings.Contains(sn.Queries, `\u003e`) {
			t.Errorf("%s snapshot queries are escaped: %.300s", sn.Trigger, sn.Queries)
		}
		q := queries(t, sn)
		if !slices.Contains(names(q.Causes), "changes") || !slices.Contains(names(q.Impact), "failure_frequencies") {
			t.Errorf("%s snapshot queries: causes %v, impact %v", sn.Trigger, names(q.Causes), names(q.Impact))
		}
		if slices.Contains(names(q.Impact), "incident_history") {
			t.Errorf("%s snapshot: the incident's own read is recorded as impact evidence", sn.Trigger)
		}
		// A record carries its parameters: the scope asked about, per
		// service of the incident (api with its dependency db, then web).
		var scopes []string
		for _, rec := range q.Causes {
			if rec.Name == "changes" {
				scopes = append(scopes, rec.Params["services"])
			}
		}
		if !slices.Equal(scopes, []string{"['api','db']", "['web']"}) {
			t.Errorf("changes read with services %q, want ['api','db'] then ['web']", scopes)
		}
	}
	if !slices.Equal(triggers, []string{TriggerOpen, TriggerUpdate, TriggerResolve}) {
		t.Errorf("snapshot triggers = %v, want open, update, resolve", triggers)
	}
	if len(d.Snapshots) != 3 || d.Snapshots[0].Verdict == "" || len(d.Snapshots[0].Suspects) == 0 || d.Snapshots[0].Impact == nil {
		t.Errorf("summaries = %+v", d.Snapshots)
	}
	if len(hooked) != 1 || hooked[0].Status != StatusResolved || !slices.Contains(hookSaw, TriggerResolve) {
		t.Errorf("OnResolve got %+v after snapshots %v; want the resolved state once, after the resolve snapshot", hooked, hookSaw)
	}

	// Resolving again is a conflict, and writes nothing.
	if _, err := tr.Resolve(ctx, in.ID, ResolveRequest{}); !errors.As(err, new(*ConflictError)) || !strings.Contains(err.Error(), "already resolved") {
		t.Errorf("second resolve: %v, want a ConflictError", err)
	}
	// A cause confirmed later is an update of the resolved incident:
	// kept, without a snapshot...
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Cause: CauseNone}); err != nil {
		t.Fatal(err)
	}
	d, _ = tr.Get(ctx, in.ID)
	if len(d.History) != 4 || d.Attributes[AttrCause] != CauseNone || d.Status != StatusResolved || len(d.Snapshots) != 3 {
		t.Errorf("after a late cause: %d states, cause %q, status %s, %d snapshots", len(d.History), d.Attributes[AttrCause], d.Status, len(d.Snapshots))
	}
	// ... and OnResolve runs again with it, so the bundle names it.
	if len(hooked) != 2 || hooked[1].Attributes[AttrCause] != CauseNone {
		t.Errorf("OnResolve called %d times, want twice, the second with the late cause", len(hooked))
	}
}

// failing is an engine or analyzer that reads the store, then fails.
type failing struct{ st *store.Store }

func (f failing) WhatChanged(ctx context.Context, q correlate.Query) (*correlate.Answer, error) {
	_, _ = f.st.Changes(ctx, []string{q.Service}, q.At.Add(-q.Lookback), q.At)
	return nil, errors.New("engine exploded")
}

func (f failing) Impact(ctx context.Context, q impact.Query) (impact.Report, error) {
	_, _ = f.st.Topology(ctx)
	return impact.Report{}, errors.New("analyzer exploded")
}

// A half that fails leaves its error and its reads; the other half is
// kept whole.
func TestSnapshotKeepsTheHalfThatWorked(t *testing.T) {
	st := storetest.Embedded(t)
	production(t, st)
	ctx := context.Background()
	tests := []struct {
		name                   string
		engine                 Engine
		analyzer               Analyzer
		wantCauses, wantImpact bool
		wantErr                []string
	}{
		{"engine fails", failing{st}, impact.New(st, impact.Config{}), false, true, []string{"causes: api: engine exploded"}},
		{"analyzer fails", correlate.New(st, correlate.Options{}), failing{st}, true, false, []string{"impact: analyzer exploded"}},
		{"neither configured", nil, nil, false, false, []string{"causes: no correlation engine", "impact: no impact analyzer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(st, Options{Engine: tt.engine, Analyzer: tt.analyzer, Now: clock()})
			in, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, At: now.Add(-10 * time.Minute), Title: "t"})
			if err != nil {
				t.Fatalf("open failed with a failing half: %v", err)
			}
			sns, err := st.Snapshots(ctx, in.ID)
			if err != nil || len(sns) != 1 {
				t.Fatalf("snapshots = %d, %v; want the open one", len(sns), err)
			}
			sn := sns[0]
			if (sn.Causes != "") != tt.wantCauses || (sn.Impact != "") != tt.wantImpact {
				t.Errorf("causes %q, impact %q; want causes %v, impact %v", sn.Causes, sn.Impact, tt.wantCauses, tt.wantImpact)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(sn.Error, want) {
					t.Errorf("error %q lacks %q", sn.Error, want)
				}
			}
			q := queries(t, sn)
			// A failing half's reads are kept too: they show what it saw.
			if _, ok := tt.engine.(failing); ok && !slices.Equal(names(q.Causes), []string{"changes"}) {
				t.Errorf("causes queries = %v, want the failing engine's one read", names(q.Causes))
			}
			if _, ok := tt.analyzer.(failing); ok && !slices.Equal(names(q.Impact), []string{"topology"}) {
				t.Errorf("impact queries = %v, want the failing analyzer's one read", names(q.Impact))
			}
			if tt.wantImpact && !slices.Contains(names(q.Impact), "failure_frequencies") {
				t.Errorf("impact queries = %v", names(q.Impact))
			}
		})
	}
}

func TestRequestsAreValidated(t *testing.T) {
	st := storetest.Embedded(t)
	production(t, st)
	ctx := context.Background()
	tr := NewTracker(st, Options{Now: clock()})
	open, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, At: now.Add(-10 * time.Minute), Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, resolved.ID, ResolveRequest{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		do        func() error
		wantField string // "" with wantErr: not a FieldError
		wantErr   error
		wantText  string
	}{
		{"open: no services", func() error { _, err := tr.Open(ctx, OpenRequest{Title: "t"}); return err }, "services", nil, "none given"},
		{"open: empty service", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"api", " "}, Title: "t"})
			return err
		}, "services", nil, "entry 1 is empty"},
		{"open: service with a space", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"my api"}, Title: "t"})
			return err
		}, "services", nil, "white space"},
		{"open: no title", func() error { _, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}}); return err }, "title", nil, "required"},
		{"open: long title", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: strings.Repeat("x", 201)})
			return err
		}, "title", nil, "more than 200"},
		{"open: bad severity", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t", Severity: "very bad"})
			return err
		}, "severity", nil, "not a severity"},
		{"open: onset in the future", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t", At: now.Add(time.Hour)})
			return err
		}, "at", nil, "in the future"},
		{"open: onset too old", func() error {
			_, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t", At: now.Add(-8 * 24 * time.Hour)})
			return err
		}, "at", nil, "ago"},
		{"update: unknown incident", func() error { _, err := tr.Update(ctx, "inc-nope", UpdateRequest{Note: "n"}); return err }, "", ErrNotFound, `no incident "inc-nope"`},
		{"update: nothing", func() error { _, err := tr.Update(ctx, open.ID, UpdateRequest{}); return err }, "", nil, "nothing to change"},
		{"update: control character in note", func() error { _, err := tr.Update(ctx, open.ID, UpdateRequest{Note: "a\x1bb"}); return err }, "note", nil, "control character"},
		{"update: empty services list", func() error { _, err := tr.Update(ctx, open.ID, UpdateRequest{Services: []string{}}); return err }, "services", nil, "none given"},
		{"update: unknown cause", func() error { _, err := tr.Update(ctx, open.ID, UpdateRequest{Cause: "chg-nope"}); return err }, "cause", nil, `no change with id "chg-nope"`},
		{"resolve: unknown incident", func() error { _, err := tr.Resolve(ctx, "inc-nope", ResolveRequest{}); return err }, "", ErrNotFound, "no incident"},
		{"resolve: unknown cause", func() error { _, err := tr.Resolve(ctx, open.ID, ResolveRequest{Cause: "chg-nope"}); return err }, "cause", nil, "no change with id"},
		{"resolve: hostile cause", func() error { _, err := tr.Resolve(ctx, open.ID, ResolveRequest{Cause: "x' OR 1=1 --"}); return err }, "cause", nil, "no change with id"},
		{"resolve: before the onset", func() error {
			_, err := tr.Resolve(ctx, open.ID, ResolveRequest{At: now.Add(-time.Hour)})
			return err
		}, "at", nil, "before the incident began"},
		{"resolve: in the future", func() error { _, err := tr.Resolve(ctx, open.ID, ResolveRequest{At: now.Add(time.Hour)}); return err }, "at", nil, "in the future"},
		{"resolve: resolved", func() error { _, err := tr.Resolve(ctx, resolved.ID, ResolveRequest{}); return err }, "", nil, "already resolved"},
		{"get: unknown incident", func() error { _, err := tr.Get(ctx, "inc-nope"); return err }, "", ErrNotFound, "no incident"},
		{"list: bad status", func() error { _, err := tr.List(ctx, ListFilter{Status: "closed"}); return err }, "status", nil, "unknown status"},
		{"list: bad limit", func() error { _, err := tr.List(ctx, ListFilter{Limit: 5000}); return err }, "limit", nil, "between 1 and 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("accepted")
			}
			var fe *FieldError
			if tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField) {
				t.Errorf("error %v (%T), want a FieldError of %q", err, err, tt.wantField)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
		})
	}
	// Nothing rejected was stored: the open incident still has one state.
	h, err := st.IncidentHistory(ctx, open.ID)
	if err != nil || len(h) != 1 {
		t.Errorf("the open incident has %d states (%v), want 1", len(h), err)
	}
	// The accepted forms of cause.
	for _, cause := range []string{CauseNone, "chg-db-cfg"} {
		in, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := tr.Resolve(ctx, in.ID, ResolveRequest{Cause: cause}); err != nil || r.Attributes[AttrCause] != cause {
			t.Errorf("resolve with cause %q: %v, %+v", cause, err, r.Attributes)
		}
	}
}

// The interval pass snapshots open incidents only, and not those open
// longer than MaxAge; Run does it each Interval until its context ends.
func TestIntervalSnapshotsOpenIncidentsOnly(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	tr := NewTracker(st, Options{Now: clock(), Interval: 20 * time.Millisecond})
	open, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "open"})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "closed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, closed.ID, ResolveRequest{}); err != nil {
		t.Fatal(err)
	}
	// Forgotten eight days ago, never resolved.
	old := now.Add(-8 * 24 * time.Hour)
	if err := st.WriteIncident(ctx, store.Incident{ID: "inc-old", Status: StatusOpen, Services: []string{"api"}, OpenedAt: old, Onset: old, UpdatedAt: old}); err != nil {
		t.Fatal(err)
	}
	count := func(id string) map[string]int {
		sns, err := st.Snapshots(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, sn := range sns {
			m[sn.Trigger]++
		}
		return m
	}
	if n := tr.snapshotOpen(ctx); n != 1 {
		t.Errorf("interval pass took %d snapshots, want 1", n)
	}
	if got := count(open.ID); got[TriggerInterval] != 1 || got[TriggerOpen] != 1 {
		t.Errorf("open incident's snapshots = %v", got)
	}
	if got := count(closed.ID); got[TriggerInterval] != 0 {
		t.Errorf("resolved incident got interval snapshots: %v", got)
	}
	if got := count("inc-old"); len(got) != 0 {
		t.Errorf("an incident open beyond MaxAge got snapshots: %v", got)
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for count(open.ID)[TriggerInterval] < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if got := count(open.ID); got[TriggerInterval] < 3 {
		t.Errorf("Run took %d interval snapshots in 10s, want at least 3", got[TriggerInterval])
	}
	if got := count(closed.ID); got[TriggerInterval] != 0 {
		t.Errorf("Run snapshotted a resolved incident: %v", got)
	}
}

// An alert-opened incident (the Tracker's Book) gets its open, update and
// resolve snapshots from Run, and OnResolve after the alert resolves it.
func TestBookIncidentsAreSnapshotted(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	resolved := make(chan store.Incident, 1)
	tr := NewTracker(st, Options{Now: clock(), Interval: time.Hour, OnResolve: func(_ context.Context, in store.Incident) { resolved <- in }})
	b := tr.Book()
	key := `{}:{alertname="HighErrorRate"}`
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tr.Run(rctx) }()

	id, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: now, Title: "High error rate"})
	if err != nil || !opened {
		t.Fatalf("open: %v, %v", opened, err)
	}
	if _, _, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"api"}, At: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Resolve(ctx, key, now.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var in store.Incident
	select {
	case in = <-resolved:
	case <-time.After(20 * time.Second):
		t.Fatal("OnResolve not called")
	}
	cancel()
	<-done
	if in.ID != id || in.Status != StatusResolved {
		t.Errorf("OnResolve got %+v", in)
	}
	sns, err := st.Snapshots(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for _, sn := range sns {
		triggers = append(triggers, sn.Trigger)
	}
	if !slices.Equal(triggers, []string{TriggerOpen, TriggerUpdate, TriggerResolve}) {
		t.Errorf("alert incident snapshots = %v, want open, update, resolve", triggers)
	}
	// A person can update the alert's incident; the alert still finds it.
	if _, err := tr.Update(ctx, id, UpdateRequest{Note: "paged db team"}); err != nil {
		t.Fatal(err)
	}
	if lid, opened, err := b.OpenOrJoin(ctx, alertmanager.Opening{Key: key, Services: []string{"checkout"}, At: now.Add(5 * time.Minute)}); err != nil || opened || lid != id {
		t.Errorf("late copy after a person's update: %q, %v, %v; want the same incident", lid, opened, err)
	}
}

// A panicking hook is logged; the resolve stands.
func TestResolveHookPanicDoesNotFailResolve(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	calls := 0
	tr := NewTracker(st, Options{Now: clock(), OnResolve: func(context.Context, store.Incident) { calls++; panic("hook broke") }})
	in, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, in.ID, ResolveRequest{}); err != nil {
		t.Fatalf("resolve failed with the hook: %v", err)
	}
	cur, _, err := st.CurrentIncident(ctx, in.ID)
	if err != nil || cur.Status != StatusResolved {
		t.Errorf("current = %+v, %v", cur, err)
	}
	if calls != 1 {
		t.Errorf("the hook ran %d times, want once", calls)
	}
	// A cause confirmed after the resolve runs the hook again (the
	// bundle must name it); a note alone does not.
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Note: "looked again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Cause: CauseNone}); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("after a later cause the hook ran %d times, want twice", calls)
	}
}

// OnChange hears every stored state, and SetAttributes adds a state
// (history kept) without a snapshot.
func TestOnChangeAndSetAttributes(t *testing.T) {
	st := storetest.Embedded(t)
	ctx := context.Background()
	var mu sync.Mutex
	var changed []string
	tr := NewTracker(st, Options{Now: clock(), OnChange: func(id string) {
		mu.Lock()
		changed = append(changed, id)
		mu.Unlock()
	}})
	in, err := tr.Open(ctx, OpenRequest{Services: []string{"api"}, Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Note: "rolled back"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Resolve(ctx, in.ID, ResolveRequest{}); err != nil {
		t.Fatal(err)
	}
	// A cause confirmed after the resolve is news too.
	if _, err := tr.Update(ctx, in.ID, UpdateRequest{Note: "cause found later"}); err != nil {
		t.Fatal(err)
	}
	sns, _ := st.Snapshots(ctx, in.ID)
	got, err := tr.SetAttributes(ctx, in.ID, map[string]string{"postmortem.url": "https://pm/1"}, "post-mortem attached")
	if err != nil {
		t.Fatal(err)
	}
	if got.Attributes["postmortem.url"] != "https://pm/1" || got.Status != StatusResolved || got.Note != "post-mortem attached" {
		t.Errorf("after SetAttributes: %+v", got)
	}
	if want := []string{in.ID, in.ID, in.ID, in.ID, in.ID}; !slices.Equal(changed, want) {
		t.Errorf("OnChange heard %v, want %v (open, update, resolve, update, attribute)", changed, want)
	}
	hist, _ := st.IncidentHistory(ctx, in.ID)
	if len(hist) != 5 || hist[3].Attributes["postmortem.url"] != "" {
		t.Errorf("history has %d states (want 5, the later update without the attribute)", len(hist))
	}
	if after, _ := st.Snapshots(ctx, in.ID); len(after) != len(sns) {
		t.Errorf("SetAttributes took a snapshot (%d → %d)", len(sns), len(after))
	}
	// The same value again, without a note: no new state.
	if again, err := tr.SetAttributes(ctx, in.ID, map[string]string{"postmortem.url": "https://pm/1"}, ""); err != nil || !again.UpdatedAt.Equal(got.UpdatedAt) {
		t.Errorf("setting an attribute to its value: %v, updated at %v (was %v)", err, again.UpdatedAt, got.UpdatedAt)
	}
	if hist, _ := st.IncidentHistory(ctx, in.ID); len(hist) != 5 {
		t.Errorf("history has %d states after a no-op SetAttributes, want 5", len(hist))
	}
	if _, err := tr.SetAttributes(ctx, "inc-none", map[string]string{"a": "b"}, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown incident: %v, want ErrNotFound", err)
	}
}

// A multi-service incident's ranking holds the changes behind each of its
// services: here the first service (web) has none, and api's deploy must
// still be a suspect.
func TestSnapshotRanksEveryService(t *testing.T) {
	st := storetest.Embedded(t)
	production(t, st)
	ctx := context.Background()
	tr := realTracker(st, Options{})
	in, err := tr.Open(ctx, OpenRequest{Services: []string{"web", "api"}, At: now.Add(-10 * time.Minute), Title: "two services"})
	if err != nil {
		t.Fatal(err)
	}
	sns, err := st.Snapshots(ctx, in.ID)
	if err != nil || len(sns) != 1 {
		t.Fatalf("snapshots %d, %v", len(sns), err)
	}
	var ans correlate.Answer
	if err := json.Unmarshal([]byte(sns[0].Causes), &ans); err != nil {
		t.Fatalf("causes %q: %v", sns[0].Causes, err)
	}
	var ids []string
	for _, c := range ans.Candidates {
		ids = append(ids, c.Change.ID)
	}
	if !slices.Contains(ids, "chg-api-v42") || !slices.Contains(ans.Scope, "web") || !slices.Contains(ans.Scope, "api") {
		t.Errorf("ranking %v over scope %v: want api's deploy, and both services in scope", ids, ans.Scope)
	}
	// Both services' reads are recorded.
	q := queries(t, sns[0])
	if n := strings.Count(strings.Join(names(q.Causes), " "), "changes"); n < 2 {
		t.Errorf("causes queries %v: want a changes read per service", names(q.Causes))
	}
}
