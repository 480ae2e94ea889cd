package impact_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	storetest.Cleanup()
	os.Exit(code)
}

var t0 = time.Date(2026, 11, 9, 14, 0, 0, 0, time.UTC)

// world writes a scope's traffic: every active user leaves an INFO request
// line in each window; in the incident window [t0, t0+1h) the first
// `failing` users fail 1..4 times each (error events sampled at rate, with
// a 500 access-log line sampled alike), and `chronic` other users fail
// once in every window, baselines included (the hour before, and a week
// before unless noWeek).
type world struct {
	active, failing, chronic int
	rate                     float64
	noWeek                   bool
}

func (w world) batch(r *rand.Rand) *event.Batch {
	b := &event.Batch{}
	user := func(i int) (string, string) { return fmt.Sprintf("u%04d", i), fmt.Sprintf("c%02d", i%7) }
	windows := []time.Time{t0, t0.Add(-time.Hour)}
	if !w.noWeek {
		windows = append(windows, t0.Add(-7*24*time.Hour))
	}
	fail := func(i, k int, at time.Time) {
		u, c := user(i)
		trace := fmt.Sprintf("tr-%d-%d-%d", at.Unix(), i, k)
		if r.Float64() < w.rate {
			b.Errors = append(b.Errors, event.ErrorEvent{ID: "e-" + trace, Time: at, Service: "api", Fingerprint: "fp1",
				Type: "TimeoutError", Message: "upstream timed out", UserID: u, CustomerID: c, TraceID: trace,
				Level: "error", SampleRate: w.rate, Attributes: map[string]string{"http.route": "POST /checkout"}})
		}
		if r.Float64() < w.rate {
			b.Logs = append(b.Logs, event.LogRecord{Time: at, Service: "api", Severity: "INFO", Body: "request done",
				UserID: u, CustomerID: c, TraceID: trace,
				Attributes: map[string]string{"http.status_code": "500", "http.route": "POST /checkout", "sample_rate": fmt.Sprint(w.rate)}})
		}
	}
	for wi, start := range windows {
		for i := range w.active {
			u, c := user(i)
			b.Logs = append(b.Logs, event.LogRecord{Time: start.Add(time.Duration(i%3000) * time.Second), Service: "api",
				Severity: "INFO", Body: "request done", UserID: u, CustomerID: c, TraceID: fmt.Sprintf("ok-%d-%d", wi, i),
				Attributes: map[string]string{"http.status_code": "200"}})
		}
		for i := w.failing; i < w.failing+w.chronic; i++ {
			fail(i, 0, start.Add(time.Duration(i%50)*time.Minute))
		}
		if wi > 0 {
			continue
		}
		for i := range w.failing {
			for k := range 1 + i%4 {
				fail(i, k, start.Add(time.Duration(5+k+i%40)*time.Minute))
			}
		}
	}
	return b
}

func TestImpactUnsampledIsExact(t *testing.T) {
	ctx := context.Background()
	st := storetest.Embedded(t)
	w := world{active: 200, failing: 50, chronic: 10, rate: 1}
	if err := st.Write(ctx, w.batch(rand.New(rand.NewPCG(1, 1)))); err != nil {
		t.Fatal(err)
	}
	a := impact.New(st, impact.DefaultConfig())
	rep, err := a.Impact(ctx, impact.Query{Services: []string{"api"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	u := rep.AffectedUsers
	if u.Observed != 60 || u.Estimate != 60 || u.Low != 60 || u.High != 60 {
		t.Errorf("affected users = %+v, want exactly 60", u.Count)
	}
	if u.Baseline != 10 || u.Excess != 50 {
		t.Errorf("baseline %v excess %v, want 10 and 50", u.Baseline, u.Excess)
	}
	// Each baseline window has 10 users, so they disagree by nothing; the
	// interval of the excess still carries the Poisson noise of 10.
	if u.ExcessLow >= 50 || u.ExcessHigh <= 50 || u.ExcessLow < 40 {
		t.Errorf("excess interval [%v, %v], want around 50 ± √10·1.64", u.ExcessLow, u.ExcessHigh)
	}
	if rep.ActiveUsers.Estimate != 200 {
		t.Errorf("active users %+v, want 200", rep.ActiveUsers)
	}
	if math.Abs(rep.Share-0.25) > 1e-9 || rep.Severity != "P1" {
		t.Errorf("share %v severity %q, want 0.25 and P1", rep.Share, rep.Severity)
	}
	if c := rep.AffectedCustomers; c.Observed != 7 || c.Estimate != 7 {
		t.Errorf("customers %+v, want 7", c.Count)
	}
	if len(rep.Customers) != 7 || rep.Customers[0].TopError != "TimeoutError: upstream timed out" {
		t.Fatalf("customers = %+v", rep.Customers)
	}
	var users uint64
	for _, c := range rep.Customers {
		users += c.Users
		if c.FirstFailure.Before(t0) || !c.LastFailure.Before(t0.Add(time.Hour)) || c.FirstFailure.After(c.LastFailure) {
			t.Errorf("customer %s failed from %v to %v, outside the window", c.Customer, c.FirstFailure, c.LastFailure)
		}
	}
	if users != 60 {
		t.Errorf("customers' users add up to %d, want 60", users)
	}
	if len(rep.ByService) != 1 || rep.ByService[0].Service != "api" || len(rep.ByService[0].Routes) != 1 ||
		rep.ByService[0].Routes[0].Route != "POST /checkout" || rep.ByService[0].Routes[0].Users != 60 {
		t.Errorf("by service = %+v", rep.ByService)
	}
	// 50 users fail 1..4 times (123 failures) and 10 chronic users once.
	if rep.Failures != 133 {
		t.Errorf("failures = %v, want 133", rep.Failures)
	}
	if len(rep.Window.Baselines) != 2 || !rep.Window.Baselines[0].To.Equal(t0) {
		t.Errorf("baselines = %+v", rep.Window.Baselines)
	}
}

func TestImpactSkipsBaselineWithoutData(t *testing.T) {
	ctx := context.Background()
	st := storetest.Embedded(t)
	w := world{active: 100, failing: 20, chronic: 4, rate: 1, noWeek: true}
	if err := st.Write(ctx, w.batch(rand.New(rand.NewPCG(2, 2)))); err != nil {
		t.Fatal(err)
	}
	rep, err := impact.New(st, impact.DefaultConfig()).Impact(ctx, impact.Query{Services: []string{"api"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// The week-old window has no data at all: averaging its zero in would
	// halve the baseline.
	if rep.AffectedUsers.Baseline != 4 || rep.AffectedUsers.Excess != 20 {
		t.Errorf("baseline %v excess %v, want 4 and 20", rep.AffectedUsers.Baseline, rep.AffectedUsers.Excess)
	}
}

func TestImpactCorrectsForSampling(t *testing.T) {
	ctx := context.Background()
	st := storetest.Embedded(t)
	w := world{active: 3000, failing: 2000, rate: 0.25}
	if err := st.Write(ctx, w.batch(rand.New(rand.NewPCG(3, 3)))); err != nil {
		t.Fatal(err)
	}
	rep, err := impact.New(st, impact.DefaultConfig()).Impact(ctx, impact.Query{Services: []string{"api"}, From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	u := rep.AffectedUsers
	if u.Observed >= 1500 {
		t.Fatalf("observed %d of 2000 at rate 0.25: the sampling did not happen", u.Observed)
	}
	if math.Abs(u.Estimate-2000)/2000 > 0.08 || u.Low > 2000 || u.High < 2000 {
		t.Errorf("affected users %+v, want about 2000 inside the interval", u.Count)
	}
	// Every customer's users scale by the same ratio.
	if c := rep.Customers[0]; math.Abs(c.UsersEstimate/float64(c.Users)-u.Estimate/float64(u.Observed)) > 1e-9 {
		t.Errorf("customer %+v does not scale like the scope", c)
	}
}

func TestQueryValidate(t *testing.T) {
	cases := []struct {
		q    impact.Query
		want string
	}{
		{impact.Query{From: t0, To: t0.Add(time.Hour)}, "services"},
		{impact.Query{Services: []string{""}, From: t0, To: t0.Add(time.Hour)}, "empty service"},
		{impact.Query{Services: []string{"api"}, To: t0}, "from, to"},
		{impact.Query{Services: []string{"api"}, From: t0, To: t0}, "to: "},
		{impact.Query{Services: []string{"api"}, From: t0, To: t0.Add(30 * 24 * time.Hour)}, "longer than"},
	}
	for _, c := range cases {
		err := c.q.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.q, err, c.want)
		}
	}
	if err := (impact.Query{Services: []string{"api"}, From: t0, To: t0.Add(time.Hour)}).Validate(); err != nil {
		t.Errorf("a good query: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := impact.DefaultConfig()
	bad.Baseline.WeeksBack = 9
	bad.Level = 1.5
	bad.Severity = append(bad.Severity, impact.SeverityLevel{Name: "P1", MinShare: 2})
	err := bad.Validate()
	for _, want := range []string{"impact.baseline.weeks_back", "impact.level", "impact.severity[4].name: \"P1\" appears twice", "impact.severity[4].min_share"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if err := impact.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
