package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/grafana/grafana-openapi-client-go/client/annotations"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

// testToken is the service account token of the tests; it must reach
// Grafana in the Authorization header and nowhere else.
const testToken = "glsa_canaryTOKEN0123456789_abcdef"

var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

// fixture fills a store with the tests' production: two changes and an
// open incident whose latest snapshot blames the first change.
func fixture() *memStore {
	m := newMemStore()
	m.changes = []event.Change{
		{
			ID: "c1", Time: time.Date(2026, 3, 2, 10, 15, 0, 0, time.UTC), Kind: event.ChangeDeploy,
			Service: "api", Environment: "production", Version: "v42", PreviousVersion: "v41",
			Commit: "abcdef1234567890", Author: "alice", Title: "Bump connection pool",
			URL: "https://github.com/acme/api/pull/42", Source: "github",
		},
		{
			ID: "c2", Time: time.Date(2026, 3, 2, 10, 40, 0, 0, time.UTC), Kind: event.ChangeFlag,
			Service: "checkout", Environment: "production", Title: "enable new_checkout_flow",
			Source: "launchdarkly",
		},
	}
	m.addIncident(store.Incident{
		ID: "inc-1", Title: "Checkout error rate high", Status: "open", Severity: "sev2",
		Services: []string{"api", "checkout"},
		OpenedAt: time.Date(2026, 3, 2, 10, 50, 0, 0, time.UTC), Onset: time.Date(2026, 3, 2, 10, 45, 0, 0, time.UTC),
		UpdatedAt: time.Date(2026, 3, 2, 10, 50, 0, 0, time.UTC),
	})
	ans := correlate.Answer{
		Service: "checkout", Verdict: correlate.VerdictCause, Summary: "deploy api v42 is the likely cause",
		Candidates: []correlate.Candidate{{Rank: 1, Score: 0.8712, Change: m.changes[0]}, {Rank: 2, Score: 0.2, Change: m.changes[1]}},
	}
	b, _ := json.Marshal(ans)
	m.snapshots["inc-1"] = []store.Snapshot{{IncidentID: "inc-1", TakenAt: time.Date(2026, 3, 2, 10, 51, 0, 0, time.UTC), Trigger: "open", Causes: string(b)}}
	return m
}

func newTestSyncer(t *testing.T, cfg Config, st Store, now *time.Time) *Syncer {
	t.Helper()
	s, err := New(cfg, st, Options{Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSyncRecordedConversations runs each recorded conversation: the
// syncer's requests must match the recorded ones in order (method, path,
// query, auth and org headers, body fields), and the store must hold the
// annotation ids Grafana gave.
func TestSyncRecordedConversations(t *testing.T) {
	resolve := func(m *memStore) {
		in := m.incidents["inc-1"][0]
		in.Status, in.ResolvedAt, in.UpdatedAt = "resolved", time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC), time.Date(2026, 3, 2, 11, 30, 0, 0, time.UTC)
		in.Attributes = map[string]string{"postmortem.url": "https://wiki.example.com/pm/inc-1"}
		m.addIncident(in)
	}
	retitle := func(m *memStore) { m.changes[0].Title = "Bump connection pool to 50" }
	orgWide := Config{OrgID: 2}
	for _, tt := range []struct {
		file string
		cfg  Config
		// before runs on the store before the sync of its index.
		before map[int]func(*memStore)
	}{
		{file: "create-then-unchanged-then-update.json", cfg: orgWide, before: map[int]func(*memStore){2: retitle, 3: resolve}},
		{file: "update-404-recreates.json", cfg: orgWide, before: map[int]func(*memStore){1: retitle}},
		{file: "grafana-503-then-back.json", cfg: orgWide},
		{file: "grafana-refused-then-back.json", cfg: orgWide},
		{file: "grafana-fails-midway.json", cfg: orgWide},
		{file: "found-unrecorded-is-updated.json", cfg: orgWide},
		{file: "dashboard-scoped.json", cfg: Config{DashboardUID: "correlator-service", PanelID: 3}},
		{file: "dashboard-missing.json", cfg: Config{DashboardUID: "no-such-dashboard"}},
		{file: "bad-token-401.json", cfg: orgWide},
		{file: "forbidden-403-stops-sync.json", cfg: orgWide},
		{file: "bad-request-skips-one.json", cfg: orgWide},
	} {
		t.Run(tt.file, func(t *testing.T) {
			conv := loadConversation(t, tt.file)
			g := newFakeGrafana(t)
			st := fixture()
			cfg := tt.cfg
			cfg.URL, cfg.Token = g.url(), testToken
			now := testNow
			s := newTestSyncer(t, cfg, st, &now)
			for i, sy := range conv.Syncs {
				if f := tt.before[i]; f != nil {
					f(st)
				}
				if sy.Grafana == "refused" {
					g.down()
				} else {
					g.up()
				}
				g.expect(sy.Exchanges)
				res, err := s.SyncOnce(context.Background())
				if (err != nil) != sy.WantError {
					t.Fatalf("sync %d: err = %v, want error %v", i, err, sy.WantError)
				}
				if p := g.pending(); len(p) > 0 {
					t.Errorf("sync %d: %d recorded requests never made, first %s %s", i, len(p), p[0].Request.Method, p[0].Request.Path)
				}
				if sy.Result != nil && res != *sy.Result {
					t.Errorf("sync %d: result %+v, want %+v", i, res, *sy.Result)
				}
				for key, id := range sy.Records {
					rec, ok := st.annotations[key]
					switch {
					case id == 0 && ok:
						t.Errorf("sync %d: %s recorded as %d, want no record", i, key, rec.ID)
					case id != 0 && rec.ID != id:
						t.Errorf("sync %d: %s recorded as %d (found %v), want %d", i, key, rec.ID, ok, id)
					}
				}
			}
		})
	}
}

// A store that cannot record an id Grafana just gave must not cause a
// duplicate: the next sync finds the annotation by its data and adopts it
// without sending it again.
func TestUnrecordedCreationIsAdoptedNotDuplicated(t *testing.T) {
	g := newFakeGrafana(t)
	st := fixture()
	now := testNow
	s := newTestSyncer(t, Config{URL: g.url(), Token: testToken}, st, &now)
	conv := loadConversation(t, "adopt-after-store-failure.json")

	st.failWrites = true
	g.expect(conv.Syncs[0].Exchanges)
	if _, err := s.SyncOnce(context.Background()); err == nil {
		t.Fatal("sync with a failing store succeeded")
	}
	st.failWrites = false
	g.expect(conv.Syncs[1].Exchanges)
	res, err := s.SyncOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p := g.pending(); len(p) > 0 {
		t.Errorf("%d recorded requests never made", len(p))
	}
	if res.Created != 2 || res.Unchanged != 1 {
		t.Errorf("result %+v, want c1 adopted (unchanged) and the other two created", res)
	}
	if st.annotations["change:c1"].ID != 101 {
		t.Errorf("change:c1 recorded as %+v, want the id Grafana gave first (101)", st.annotations["change:c1"])
	}
}

// SyncIncident sends the one incident, and only when it changed.
func TestSyncIncident(t *testing.T) {
	g := newFakeGrafana(t)
	st := fixture()
	now := testNow
	s := newTestSyncer(t, Config{URL: g.url(), Token: testToken, OrgID: 2}, st, &now)
	conv := loadConversation(t, "sync-incident.json")
	for i, sy := range conv.Syncs {
		g.expect(sy.Exchanges)
		if i == 1 {
			// Five minutes later the open region has grown a step: one
			// update. (A minute would not move it: see openRegionStep.)
			now = now.Add(openRegionStep)
		}
		if err := s.SyncIncident(context.Background(), "inc-1"); (err != nil) != sy.WantError {
			t.Fatalf("sync %d: err = %v", i, err)
		}
		if p := g.pending(); len(p) > 0 {
			t.Errorf("sync %d: %d recorded requests never made", i, len(p))
		}
	}
	// A minute more does not grow the open region: nothing is sent.
	g.expect(nil)
	now = now.Add(time.Minute)
	if err := s.SyncIncident(context.Background(), "inc-1"); err != nil {
		t.Fatalf("sync a minute later: %v", err)
	}
	if err := s.SyncIncident(context.Background(), "no-such"); err == nil {
		t.Error("syncing an unknown incident succeeded")
	}
	if st.annotations["change:c1"].ID != 0 {
		t.Error("SyncIncident synced a change")
	}
}

func TestBackoff(t *testing.T) {
	s := &Syncer{cfg: Config{SyncInterval: Duration(time.Minute)}}
	var got []time.Duration
	for f := 0; f <= 6; f++ {
		got = append(got, s.backoff(f))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
}

func TestErrorClassification(t *testing.T) {
	for _, tt := range []struct {
		name          string
		err           error
		unavailable   bool
		notFoundCheck bool
	}{
		{"no answer", errors.New("dial tcp 127.0.0.1:3000: connect: connection refused"), true, false},
		{"400 one annotation", annotations.NewPostAnnotationBadRequest(), false, false},
		{"401 token", annotations.NewPostAnnotationUnauthorized(), true, false},
		{"403 permissions", annotations.NewPostAnnotationForbidden(), true, false},
		{"500", annotations.NewPostAnnotationInternalServerError(), true, false},
		{"404 undocumented, wrapped", fmt.Errorf("update: %w", runtime.NewAPIError("updateAnnotation", nil, 404)), false, true},
		{"409 undocumented", runtime.NewAPIError("postAnnotation", nil, 409), false, false},
		{"429 rate limited", runtime.NewAPIError("postAnnotation", nil, 429), true, false},
		{"503 from a proxy", runtime.NewAPIError("postAnnotation", nil, 503), true, false},
	} {
		if got := unavailable(tt.err); got != tt.unavailable {
			t.Errorf("%s: unavailable = %v, want %v", tt.name, got, tt.unavailable)
		}
		if got := isStatus(tt.err, 404); got != tt.notFoundCheck {
			t.Errorf("%s: isStatus 404 = %v, want %v", tt.name, got, tt.notFoundCheck)
		}
	}
}

// The metrics count what reached Grafana per kind, failures, and the time
// of the last sync that left nothing unsynced.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newFakeGrafana(t)
	st := fixture()
	now := testNow
	s, err := New(Config{URL: g.url(), Token: testToken, OrgID: 2}, st, Options{Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	run := func(file string, syncs int) {
		conv := loadConversation(t, file)
		for i := 0; i < syncs; i++ {
			if i == 2 {
				st.changes[0].Title = "Bump connection pool to 50"
			}
			g.expect(conv.Syncs[i].Exchanges)
			s.SyncOnce(context.Background())
		}
	}
	st2 := fixture()
	run("create-then-unchanged-then-update.json", 3)
	want := `
# HELP correlator_grafana_annotations_created_total Annotations created in Grafana, by object kind (change, incident).
# TYPE correlator_grafana_annotations_created_total counter
correlator_grafana_annotations_created_total{kind="change"} 2
correlator_grafana_annotations_created_total{kind="incident"} 1
# HELP correlator_grafana_annotations_updated_total Annotations updated in place in Grafana because their object changed, by object kind.
# TYPE correlator_grafana_annotations_updated_total counter
correlator_grafana_annotations_updated_total{kind="change"} 1
# HELP correlator_grafana_last_sync_success_timestamp_seconds Unix time of the last sync that brought every annotation up to date.
# TYPE correlator_grafana_last_sync_success_timestamp_seconds gauge
correlator_grafana_last_sync_success_timestamp_seconds 1.7724528e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// A refused annotation counts as failed and the last success stays.
	reg = prometheus.NewRegistry()
	s, err = New(Config{URL: g.url(), Token: testToken, OrgID: 2}, st2, Options{Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	g.expect(loadConversation(t, "bad-request-skips-one.json").Syncs[0].Exchanges)
	if _, err := s.SyncOnce(context.Background()); err == nil {
		t.Fatal("sync with a refused annotation succeeded")
	}
	if got := testutil.ToFloat64(s.m.failed.WithLabelValues("change")); got != 1 {
		t.Errorf("failed{change} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.lastSuccess); got != 0 {
		t.Errorf("last success = %v after a failed sync, want 0", got)
	}
}
