package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
)

// SnapshotQueries is the JSON of store.Snapshot.Queries: the reads behind
// each half, enough to run them again.
type SnapshotQueries struct {
	Causes []store.QueryRecord `json:"causes"`
	Impact []store.QueryRecord `json:"impact"`
}

// start is when the incident began: its onset, or its opening when that
// is earlier or no onset is stored.
func start(in store.Incident) time.Time {
	if in.Onset.IsZero() || in.OpenedAt.Before(in.Onset) {
		return in.OpenedAt
	}
	return in.Onset
}

// Snapshot computes what correlator knows about the incident now and
// stores it: the ranked causes (Engine.WhatChanged for each of the
// incident's services, see causes, from Lookback before its start to its
// end or now, with its onset when a person gave one before opening it,
// else the engine detects it) and the impact (impact.IncidentQuery: its services from its
// onset to its end or now). Each half's store reads are recorded. A half
// that fails leaves its field empty and its error in Error; the other
// half is kept. The error returned is the store's only: the incident
// cannot be read or the snapshot not written.
func (t *Tracker) Snapshot(ctx context.Context, id, trigger string) (store.Snapshot, error) {
	in, err := t.current(ctx, id)
	if err != nil {
		return store.Snapshot{}, err
	}
	now := t.opt.Now().UTC()
	from, to := start(in), now
	if !in.ResolvedAt.IsZero() {
		to = in.ResolvedAt
	}
	if to.Before(from) {
		to = from
	}
	sn := store.Snapshot{IncidentID: id, TakenAt: now, Trigger: trigger, WindowFrom: from, WindowTo: to}
	qs := SnapshotQueries{Causes: []store.QueryRecord{}, Impact: []store.QueryRecord{}}
	var errs []string

	causes, recs, err := t.causes(ctx, in, from, to)
	qs.Causes = append(qs.Causes, recs...)
	if err != nil {
		errs = append(errs, "causes: "+err.Error())
	}
	sn.Causes = causes

	rep, recs, err := t.impact(ctx, in, from, to, now)
	qs.Impact = append(qs.Impact, recs...)
	if err != nil {
		errs = append(errs, "impact: "+err.Error())
	}
	sn.Impact = rep

	if sn.Queries, err = marshal(qs); err != nil {
		return store.Snapshot{}, fmt.Errorf("encode queries: %w", err)
	}
	sn.Error = strings.Join(errs, "; ")
	if err := t.st.WriteSnapshot(ctx, sn); err != nil {
		return store.Snapshot{}, fmt.Errorf("write snapshot of %s: %w", id, err)
	}
	if sn.Error != "" {
		t.log.Warn("snapshot incomplete", "incident", id, "trigger", trigger, "err", sn.Error)
	}
	return sn, nil
}

// marshal encodes v as the API does (SQL keeps its < and >, not \u003c),
// without the encoder's trailing newline.
func marshal(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// maxCauseServices bounds the services a snapshot asks about: an alert
// group naming dozens of services would otherwise cost dozens of answers.
const maxCauseServices = 5

// causes asks the engine about each of the incident's services (the first
// maxCauseServices), recording its reads, and merges the answers into one
// ranking (correlate.Merge): the cause of a multi-service incident may lie
// with any of them. It returns the ranking as JSON; a service whose
// question failed is reported in the error while the others' answers are
// kept.
func (t *Tracker) causes(ctx context.Context, in store.Incident, from, to time.Time) (string, []store.QueryRecord, error) {
	if t.opt.Engine == nil {
		return "", nil, fmt.Errorf("no correlation engine configured")
	}
	if len(in.Services) == 0 {
		return "", nil, fmt.Errorf("the incident names no service")
	}
	rctx, log := store.RecordQueries(ctx)
	var answers []*correlate.Answer
	var errs []error
	for _, svc := range in.Services[:min(len(in.Services), maxCauseServices)] {
		q := correlate.Query{Service: svc, At: to, Lookback: to.Sub(from) + t.opt.Lookback}
		// An onset a person gave is known; one equal to the opening (the
		// default, and an alert's start) is only when someone noticed,
		// and the engine finds the real one better.
		if !in.Onset.IsZero() && in.Onset.Before(in.OpenedAt) {
			q.Onset = in.Onset
		}
		ans, err := t.opt.Engine.WhatChanged(rctx, q)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", svc, err))
			continue
		}
		answers = append(answers, ans)
	}
	merged := correlate.Merge(answers...)
	if merged == nil {
		return "", log.Records(), errors.Join(errs...)
	}
	b, err := marshal(merged)
	if err != nil {
		return "", log.Records(), fmt.Errorf("encode answer: %w", err)
	}
	return b, log.Records(), errors.Join(errs...)
}

// impact estimates who the incident hurt so far, recording the analyzer's
// reads (not the read of the incident itself, which a later state would
// change).
func (t *Tracker) impact(ctx context.Context, in store.Incident, from, to, now time.Time) (string, []store.QueryRecord, error) {
	if t.opt.Analyzer == nil {
		return "", nil, fmt.Errorf("no impact analyzer configured")
	}
	if !to.After(from) {
		return "", nil, fmt.Errorf("the incident's window is empty so far (it began at %s)", from.Format(time.RFC3339))
	}
	q, err := impact.IncidentQuery(ctx, t.st, in.ID, now)
	if err != nil {
		return "", nil, err
	}
	rctx, log := store.RecordQueries(ctx)
	rep, err := t.opt.Analyzer.Impact(rctx, q)
	if err != nil {
		return "", log.Records(), err
	}
	b, err := marshal(rep)
	if err != nil {
		return "", log.Records(), fmt.Errorf("encode report: %w", err)
	}
	return b, log.Records(), nil
}

// Run snapshots every open incident each Interval, and takes the
// snapshots the Tracker's Book asks for (calling OnResolve after an
// alert's resolve), until ctx ends. It returns nil then. Run it once per
// Tracker.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.opt.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-t.jobs:
			t.runJob(ctx, j)
		case <-tick.C:
			t.snapshotOpen(ctx)
		}
	}
}

// runJob takes a snapshot the Book asked for.
func (t *Tracker) runJob(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, t.opt.SnapshotTimeout)
	defer cancel()
	if _, err := t.Snapshot(ctx, j.id, j.trigger); err != nil {
		t.log.Error("snapshot failed", "incident", j.id, "trigger", j.trigger, "err", err)
	}
	defer t.changed(j.id)
	if j.trigger != TriggerResolve {
		return
	}
	in, err := t.current(ctx, j.id)
	if err != nil {
		t.log.Error("resolve hook skipped: cannot read incident", "incident", j.id, "err", err)
		return
	}
	t.resolvedHook(ctx, in)
}

// snapshotOpen takes an interval snapshot of every open incident not older
// than MaxAge, and returns how many it wrote.
func (t *Tracker) snapshotOpen(ctx context.Context) int {
	open, err := t.st.ListIncidents(ctx, store.IncidentFilter{Status: StatusOpen})
	if err != nil {
		t.log.Error("list open incidents", "err", err)
		return 0
	}
	n := 0
	now := t.opt.Now()
	for _, in := range open {
		if ctx.Err() != nil {
			break
		}
		if now.Sub(start(in)) > t.opt.MaxAge {
			t.log.Debug("open incident too old for interval snapshots", "incident", in.ID, "opened_at", in.OpenedAt)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, t.opt.SnapshotTimeout)
		_, err := t.Snapshot(sctx, in.ID, TriggerInterval)
		cancel()
		if err != nil {
			t.log.Error("snapshot failed", "incident", in.ID, "trigger", TriggerInterval, "err", err)
			continue
		}
		n++
	}
	return n
}

// SnapshotSummary is a snapshot in brief, for listings: the verdict, the
// first suspects and the headline impact. The post-mortem reads the whole
// snapshot.
type SnapshotSummary struct {
	TakenAt    time.Time      `json:"taken_at"`
	Trigger    string         `json:"trigger"`
	WindowFrom time.Time      `json:"window_from"`
	WindowTo   time.Time      `json:"window_to"`
	Verdict    string         `json:"verdict,omitempty"`
	Summary    string         `json:"summary,omitempty"`
	Suspects   []Suspect      `json:"suspects,omitempty"`
	Impact     *ImpactSummary `json:"impact,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// Suspect is one ranked change of a snapshot.
type Suspect struct {
	Rank     int       `json:"rank"`
	Score    float64   `json:"score"`
	ChangeID string    `json:"change_id"`
	Kind     string    `json:"kind"`
	Service  string    `json:"service"`
	Version  string    `json:"version,omitempty"`
	Time     time.Time `json:"time"`
}

// ImpactSummary is the headline of a snapshot's impact report.
type ImpactSummary struct {
	Users     float64 `json:"users"`
	UsersLow  float64 `json:"users_low"`
	UsersHigh float64 `json:"users_high"`
	Customers float64 `json:"customers"`
	Share     float64 `json:"share"`
	Severity  string  `json:"severity"`
}

// maxSuspects is how many suspects a summary lists.
const maxSuspects = 3

// Summarize reads a stored snapshot into its summary. A half that cannot
// be decoded is reported in Error, beside the snapshot's own.
func Summarize(sn store.Snapshot) SnapshotSummary {
	s := SnapshotSummary{TakenAt: sn.TakenAt, Trigger: sn.Trigger, WindowFrom: sn.WindowFrom, WindowTo: sn.WindowTo, Error: sn.Error}
	bad := func(half string, err error) {
		msg := fmt.Sprintf("cannot read stored %s: %v", half, err)
		if s.Error != "" {
			msg = s.Error + "; " + msg
		}
		s.Error = msg
	}
	if sn.Causes != "" {
		var a correlate.Answer
		if err := json.Unmarshal([]byte(sn.Causes), &a); err != nil {
			bad("causes", err)
		} else {
			s.Verdict, s.Summary = a.Verdict, a.Summary
			for _, c := range a.Candidates[:min(maxSuspects, len(a.Candidates))] {
				s.Suspects = append(s.Suspects, Suspect{Rank: c.Rank, Score: c.Score, ChangeID: c.Change.ID, Kind: string(c.Change.Kind),
					Service: c.Change.Service, Version: c.Change.Version, Time: c.Change.Time})
			}
		}
	}
	if sn.Impact != "" {
		var r impact.Report
		if err := json.Unmarshal([]byte(sn.Impact), &r); err != nil {
			bad("impact", err)
		} else {
			s.Impact = &ImpactSummary{Users: r.AffectedUsers.Estimate, UsersLow: r.AffectedUsers.Low, UsersHigh: r.AffectedUsers.High,
				Customers: r.AffectedCustomers.Estimate, Share: r.Share, Severity: r.Severity}
		}
	}
	return s
}
