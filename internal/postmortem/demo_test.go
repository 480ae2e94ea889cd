package postmortem_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/postmortem"
	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

// demo is the demo's production (cmd/correlator demo: seed 1, a bad
// deploy), loaded once into an embedded store, with an incident opened by
// its alert, an action taken, resolved with the injected cause confirmed,
// and two snapshots taken the way the incident book takes them (the
// snapshot contract of internal/store).
type demo struct {
	st       *store.Store
	sc       *scenario.Scenario
	id       string
	resolved time.Time
	// answers and reports are what the snapshots hold, open then resolve.
	answers []*correlate.Answer
	reports []impact.Report
}

var (
	demoOnce sync.Once
	demoFix  *demo
	demoErr  error
)

const demoIncident = "inc-demo-sessions"

// loadDemo builds the fixture once per test process; every test reads it
// and none writes to it.
func loadDemo(t *testing.T) *demo {
	t.Helper()
	demoOnce.Do(func() {
		// The store must outlive the first test that asks for it.
		demoFix, demoErr = buildDemo(&onceTB{TB: t})
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoFix
}

// onceTB keeps the store open past the test that built the fixture: its
// Cleanup is ignored (the process's TestMain removes the directory).
type onceTB struct{ testing.TB }

func (o *onceTB) Cleanup(func()) {}

func buildDemo(t testing.TB) (*demo, error) {
	ctx := context.Background()
	sc, err := scenario.Generate(scenario.Options{Seed: 1, Start: time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		return nil, err
	}
	st := storetest.Embedded(t)
	if err := st.Write(ctx, &sc.Batch); err != nil {
		return nil, err
	}
	d := &demo{st: st, sc: sc, id: demoIncident, resolved: sc.Detected.Add(25 * time.Minute)}
	// The alert opens the incident at Detected, as the Alertmanager
	// receiver's Book writes it.
	open := store.Incident{ID: d.id, Title: "High error rate on " + sc.Service, Status: "open", Severity: "critical",
		Services: []string{sc.Service}, OpenedAt: sc.Detected, Onset: sc.Detected, UpdatedAt: sc.Detected.Add(2 * time.Second),
		Attributes: map[string]string{"alertmanager.group_key": `{}:{alertname="HighErrorRate"}`, "alertname": "HighErrorRate", "alertmanager.receiver": "correlator"}}
	update := open
	update.UpdatedAt, update.Note = sc.Detected.Add(12*time.Minute), "rolled back "+sc.CauseService
	resolve := update
	resolve.Status, resolve.ResolvedAt, resolve.UpdatedAt = "resolved", d.resolved, d.resolved.Add(time.Second)
	resolve.Note = ""
	resolve.Attributes = map[string]string{"cause": sc.ExpectedCause}
	for k, v := range open.Attributes {
		resolve.Attributes[k] = v
	}
	for _, in := range []store.Incident{open, update, resolve} {
		if err := st.WriteIncident(ctx, in); err != nil {
			return nil, err
		}
	}
	for _, snap := range []struct {
		trigger string
		at      time.Time
	}{{"open", sc.Detected}, {"resolve", d.resolved}} {
		sn, ans, rep, err := takeSnapshot(ctx, st, d.id, sc.Service, snap.trigger, snap.at)
		if err != nil {
			return nil, err
		}
		if err := st.WriteSnapshot(ctx, sn); err != nil {
			return nil, err
		}
		d.answers, d.reports = append(d.answers, ans), append(d.reports, rep)
	}
	return d, nil
}

// takeSnapshot follows the snapshot contract: the causes and the impact as
// the API returns them, and the queries behind each.
func takeSnapshot(ctx context.Context, st *store.Store, id, service, trigger string, at time.Time) (store.Snapshot, *correlate.Answer, impact.Report, error) {
	cctx, clog := store.RecordQueries(ctx)
	ans, err := correlate.New(st, correlate.Options{}).WhatChanged(cctx, correlate.Query{Service: service, At: at, Lookback: 2 * time.Hour})
	if err != nil {
		return store.Snapshot{}, nil, impact.Report{}, err
	}
	ictx, ilog := store.RecordQueries(ctx)
	rep, err := impact.New(st, impact.Config{}).Impact(ictx, impact.Query{Services: []string{service}, From: ans.Onset, To: at, Onset: ans.Onset, Incident: id})
	if err != nil {
		return store.Snapshot{}, nil, impact.Report{}, err
	}
	causes, _ := json.Marshal(ans)
	imp, _ := json.Marshal(rep)
	qs, _ := json.Marshal(map[string][]store.QueryRecord{"causes": clog.Records(), "impact": ilog.Records()})
	return store.Snapshot{IncidentID: id, TakenAt: at, Trigger: trigger, WindowFrom: ans.Window.From, WindowTo: ans.Window.To,
		Causes: string(causes), Impact: string(imp), Queries: string(qs)}, ans, rep, nil
}

// demoBundle builds the demo incident's bundle at a fixed clock.
func demoBundle(t *testing.T, d *demo, opt postmortem.Options) *postmortem.Bundle {
	t.Helper()
	opt.Now = func() time.Time { return d.resolved.Add(time.Hour) }
	b, err := postmortem.NewBuilder(d.st, opt).Build(context.Background(), d.id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
