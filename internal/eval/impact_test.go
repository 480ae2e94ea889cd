package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// report builds an impact report with the users count est [lo, hi], seen
// users observed and excess, customers and active users.
func report(observed uint64, est, lo, hi, excess, customers, active float64) impact.Report {
	return impact.Report{
		AffectedUsers:     impact.Affected{Count: impact.Count{Observed: observed, Estimate: est, Low: lo, High: hi}, Excess: excess},
		AffectedCustomers: impact.Affected{Count: impact.Count{Estimate: customers}},
		ActiveUsers:       impact.Count{Estimate: active},
	}
}

// truthAt is a truth of 100 affected users (80 in excess), 10 customers
// and 1000 active users at sample rate rate.
func truthAt(rate float64) ImpactTruth {
	return ImpactTruth{
		Spec:          ImpactSpec{Name: "imphand", SampleRate: rate},
		AffectedUsers: 100, ExcessUsers: 80, AffectedCustomers: 10, ExcessCustomers: 8, ActiveUsers: 1000,
	}
}

func TestImpactScore(t *testing.T) {
	tests := []struct {
		name    string
		truth   ImpactTruth
		rep     impact.Report
		want    ImpactCase // the errors and flags only
		problem bool
	}{
		{"exact", truthAt(1), report(100, 100, 100, 100, 80, 10, 1000),
			ImpactCase{Covered: true, Exact: true}, false},
		{"over, covered", truthAt(0.1), report(40, 110, 90, 130, 60, 12, 900),
			ImpactCase{UsersErr: 0.1, UsersBias: 0.1, ObservedErr: 0.6, Width: 0.4, ExcessErr: 0.25, CustomersErr: 0.2, ActiveErr: 0.1, Covered: true}, false},
		{"under, missed", truthAt(0.1), report(40, 90, 85, 95, 80, 10, 1000),
			ImpactCase{UsersErr: 0.1, UsersBias: -0.1, ObservedErr: 0.6, Width: 0.1}, false},
		{"interval edge is covered", truthAt(0.5), report(70, 95, 90, 100, 80, 10, 1000),
			ImpactCase{UsersErr: 0.05, UsersBias: -0.05, ObservedErr: 0.3, Width: 0.1, Covered: true}, false},
		{"zero-width but wrong is not exact", truthAt(1), report(99, 99, 99, 99, 80, 10, 1000),
			ImpactCase{UsersErr: 0.01, UsersBias: -0.01, ObservedErr: 0.01}, false},
		{"nothing to find", ImpactTruth{Spec: ImpactSpec{SampleRate: 0.5}}, report(0, 2, 0, 3, 0, 0, 0),
			ImpactCase{UsersErr: 2, UsersBias: 2, Width: 3, Covered: true}, false},
		{"not a number", truthAt(0.5), report(10, math.NaN(), 0, math.Inf(1), 0, 1, 1),
			ImpactCase{UsersErr: maxErr, UsersBias: maxErr, ObservedErr: maxErr, Width: maxErr, ExcessErr: maxErr, CustomersErr: maxErr, ActiveErr: maxErr}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ImpactCase{Truth: tt.truth}
			c.score(tt.rep)
			near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }
			got, want := c, tt.want
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"users err", got.UsersErr, want.UsersErr}, {"users bias", got.UsersBias, want.UsersBias},
				{"observed err", got.ObservedErr, want.ObservedErr}, {"width", got.Width, want.Width},
				{"excess err", got.ExcessErr, want.ExcessErr}, {"customers err", got.CustomersErr, want.CustomersErr},
				{"active err", got.ActiveErr, want.ActiveErr},
			} {
				if !near(f.got, f.want) {
					t.Errorf("%s = %g, want %g", f.name, f.got, f.want)
				}
			}
			if got.Covered != want.Covered || got.Exact != want.Exact {
				t.Errorf("covered %v exact %v, want %v %v", got.Covered, got.Exact, want.Covered, want.Exact)
			}
			if (got.Problem != "") != tt.problem {
				t.Errorf("problem %q, want one: %v", got.Problem, tt.problem)
			}
		})
	}
}

// handMadeImpact is a result over hand-made answers: per rate, scenarios
// whose users errors and coverage are known.
func handMadeImpact() ImpactResult {
	r := ImpactResult{Split: Dev, FirstSeed: 1, LastSeed: 14, Records: 123456, Capped: 2, LoadS: 60, AnalyzeS: 12, DurationS: 75}
	add := func(rate float64, est, lo, hi float64) {
		c := ImpactCase{Seed: uint64(len(r.Cases) + 1), Truth: truthAt(rate)}
		c.score(report(uint64(100*rate), est, lo, hi, est-20, 10, 1000))
		r.Cases = append(r.Cases, c)
	}
	// Rate 1: exact twice.
	add(1, 100, 100, 100)
	add(1, 100, 100, 100)
	// Rate 0.5: errors 1%, 3%, 8%: median 3%, every interval covers.
	add(0.5, 101, 95, 105)
	add(0.5, 97, 90, 102)
	add(0.5, 108, 99, 115)
	// Rate 0.25: errors 2%, 6%, 7%, 9%: median 6.5%, one miss.
	add(0.25, 98, 90, 105)
	add(0.25, 106, 95, 115)
	add(0.25, 93, 85, 99)
	add(0.25, 109, 99, 120)
	// Rate 0.1: errors 4%, 5%: median 4.5%.
	add(0.1, 104, 90, 120)
	add(0.1, 95, 80, 110)
	// Rate 0.01, below the error target's rates: large errors, one miss.
	add(0.01, 150, 60, 200)
	add(0.01, 40, 20, 90)
	add(0.01, 130, 70, 260)
	r.Summarize()
	return r
}

func TestImpactSummarize(t *testing.T) {
	r := handMadeImpact()
	wantMedian := map[float64]float64{1: 0, 0.5: 0.03, 0.25: 0.065, 0.1: 0.045, 0.01: 0.5}
	if len(r.Rates) != len(wantMedian) {
		t.Fatalf("%d rate rows, want %d", len(r.Rates), len(wantMedian))
	}
	for i, s := range r.Rates {
		if i > 0 && s.Rate >= r.Rates[i-1].Rate {
			t.Errorf("rates not highest first: %g after %g", s.Rate, r.Rates[i-1].Rate)
		}
		if math.Abs(*s.UsersErr-wantMedian[s.Rate]) > 1e-9 {
			t.Errorf("rate %g: median users error %g, want %g", s.Rate, *s.UsersErr, wantMedian[s.Rate])
		}
	}
	if r.Rates[0].Exact != 2 {
		t.Errorf("rate 1: %d exact, want 2", r.Rates[0].Exact)
	}
	// Sampled: 12 scenarios, 2 missed.
	if r.Sampled.Scenarios != 12 || math.Abs(*r.Sampled.Coverage-10.0/12) > 1e-9 {
		t.Errorf("sampled: %d scenarios, coverage %g; want 12, %g", r.Sampled.Scenarios, *r.Sampled.Coverage, 10.0/12)
	}
	want := map[string]string{
		"users median error at rate 1":    StatusPass,
		"users median error at rate 0.5":  StatusPass,
		"users median error at rate 0.25": StatusFail, // 6.5%
		"users median error at rate 0.1":  StatusPass, // 4.5%
		"users interval coverage >=":      StatusFail, // 83% < 85%
		"users interval coverage <=":      StatusPass,
		"users exact at rate 1":           StatusPass,
	}
	got := map[string]string{}
	for _, tr := range r.Targets {
		name := tr.Name
		if strings.HasPrefix(name, "users interval coverage") {
			name += " " + tr.Op
		}
		got[name] = tr.Status
	}
	for name, status := range want {
		if got[name] != status {
			t.Errorf("%s: %s, want %s", name, got[name], status)
		}
	}
	if len(got) != len(want) {
		t.Errorf("targets %v, want %v", got, want)
	}
	if r.Pass {
		t.Error("result passes with failed targets")
	}

	// Coverage above the band fails too: every interval holding the truth
	// is as wrong as too few.
	for i := range r.Cases {
		r.Cases[i].Covered = true
	}
	r.Summarize()
	for _, tr := range r.Targets {
		if tr.Name == "users interval coverage" && tr.Op == "<=" && tr.Status != StatusFail {
			t.Errorf("coverage 100%%: %s, want FAIL", tr.Status)
		}
	}

	// Without rate-1 scenarios, their targets are not applicable and do not
	// fail the run; a non-exact rate-1 interval fails it.
	r = handMadeImpact()
	r.Cases = r.Cases[2:]
	r.Summarize()
	for _, tr := range r.Targets {
		if strings.HasSuffix(tr.Name, "rate 1") && tr.Status != StatusNA {
			t.Errorf("%s without rate-1 scenarios: %s, want N/A", tr.Name, tr.Status)
		}
	}
	r = handMadeImpact()
	r.Cases[1].score(report(100, 100, 95, 105, 80, 10, 1000))
	r.Summarize()
	for _, tr := range r.Targets {
		if tr.Name == "users exact at rate 1" && tr.Status != StatusFail {
			t.Errorf("a wide rate-1 interval: %s, want FAIL", tr.Status)
		}
	}
}

func TestQuantileOf(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{3}, 0.5, 3},
		{[]float64{1, 2, 3}, 0.5, 2},
		{[]float64{1, 2, 3, 10}, 0.5, 2.5},
		{[]float64{0, 10}, 0.9, 9},
		{[]float64{1, maxErr}, 0.5, maxErr / 2},
	} {
		if got := quantileOf(c.xs, c.q); got != c.want {
			t.Errorf("quantile %g of %v = %g, want %g", c.q, c.xs, got, c.want)
		}
	}
}

func TestWriteImpactTable(t *testing.T) {
	var b bytes.Buffer
	WriteImpactTable(&b, handMadeImpact())
	checkGolden(t, "impact_table.golden", b.Bytes())
}

func TestImpactResultJSON(t *testing.T) {
	// The result goes into eval-test.json, so it must encode even when an
	// answer was not a number, and decode to the same result.
	r := handMadeImpact()
	c := ImpactCase{Truth: truthAt(0.5)}
	c.score(report(1, math.NaN(), math.Inf(-1), math.Inf(1), math.NaN(), math.NaN(), math.NaN()))
	r.Cases = append(r.Cases, c)
	r.Summarize()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back ImpactResult
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Errorf("round trip changed the result:\n%s\n%s", data, again)
	}
	if back.Cases[len(back.Cases)-1].Problem == "" {
		t.Error("the not-a-number answer lost its problem")
	}
}

// countingStore is a test double of the store and the analysis: it keeps
// every loaded record and answers with exact counts of what it holds, the
// sampled records as they are. It proves RunImpact's plumbing (every
// scenario loaded before any is asked, each question scoped to its
// scenario, answers scored against the right truth), not the accuracy of
// any estimator.
type countingStore struct {
	b        event.Batch
	loads    int
	askedAll bool // a question came after every load
}

func (s *countingStore) load(_ context.Context, b *event.Batch) error {
	s.b.Append(b)
	s.loads++
	return nil
}

func (s *countingStore) analyze(n int) func(context.Context, impact.Query) (impact.Report, error) {
	return func(_ context.Context, q impact.Query) (impact.Report, error) {
		s.askedAll = s.loads == n
		in := observe(&s.b, q.Services, q.From, q.To)
		w := q.To.Sub(q.From)
		base := 0.0
		for _, from := range []time.Time{q.Onset.Add(-w), q.From.Add(-week)} {
			base += float64(len(observe(&s.b, q.Services, from, from.Add(w)).users)) / 2
		}
		users := float64(len(in.users))
		return impact.Report{
			AffectedUsers: impact.Affected{
				Count:    impact.Count{Observed: uint64(len(in.users)), Estimate: users, Low: users, High: users},
				Baseline: base, Excess: users - base,
			},
			AffectedCustomers: impact.Affected{Count: impact.Count{Observed: uint64(len(in.customers)), Estimate: float64(len(in.customers))}},
			ActiveUsers:       impact.Count{Observed: uint64(len(in.active)), Estimate: float64(len(in.active))},
		}, nil
	}
}

func TestRunImpact(t *testing.T) {
	// Six scenarios: one per sample rate.
	const n = 6
	s := &countingStore{}
	var progress bytes.Buffer
	r, err := RunImpact(context.Background(), Dev, n, s.load, s.analyze(n), &progress)
	if err != nil {
		t.Fatal(err)
	}
	if !s.askedAll {
		t.Error("a scenario was analysed before every scenario was loaded")
	}
	if len(r.Cases) != n || r.FirstSeed != 1 || r.LastSeed != n {
		t.Fatalf("%d cases, seeds %d..%d; want %d, 1..%d", len(r.Cases), r.FirstSeed, r.LastSeed, n, n)
	}
	if r.Records != s.b.Len() {
		t.Errorf("result counts %d records, %d were loaded", r.Records, s.b.Len())
	}
	if lines := strings.Count(progress.String(), "\n"); lines != 2*n {
		t.Errorf("%d progress lines, want %d:\n%s", lines, 2*n, progress.String())
	}
	for _, c := range r.Cases {
		rate := c.Truth.Spec.SampleRate
		u := c.Answer.Users
		// The double counts what it sees: at rate 1 the truth, exactly,
		// which also shows that no other scenario's records leaked into
		// the answer; below, fewer.
		switch {
		case rate == 1 && (u.Observed != uint64(c.Truth.AffectedUsers) || !c.Exact || c.UsersErr != 0):
			t.Errorf("rate 1: %d users seen, truth %d, exact %v", u.Observed, c.Truth.AffectedUsers, c.Exact)
		case rate < 1 && u.Observed >= uint64(c.Truth.AffectedUsers):
			t.Errorf("rate %g: %d users seen of %d: nothing was sampled away", rate, u.Observed, c.Truth.AffectedUsers)
		case c.UsersErr != c.ObservedErr:
			t.Errorf("rate %g: the estimate is the observed count, yet errors %g and %g", rate, c.UsersErr, c.ObservedErr)
		}
	}
	status := map[string]string{}
	for _, tr := range r.Targets {
		status[tr.Name+" "+tr.Op] = tr.Status
	}
	// Counting what was kept is exact at rate 1 and far off below.
	for name, want := range map[string]string{
		"users exact at rate 1 >=":          StatusPass,
		"users median error at rate 1 <=":   StatusPass,
		"users median error at rate 0.5 <=": StatusFail,
		"users interval coverage >=":        StatusFail,
	} {
		if status[name] != want {
			t.Errorf("%s: %s, want %s", name, status[name], want)
		}
	}
	if r.Pass {
		t.Error("the counting double passes")
	}
}

func TestRunImpactErrors(t *testing.T) {
	ctx := context.Background()
	s := &countingStore{}
	boom := errors.New("boom")
	failLoad := func(context.Context, *event.Batch) error { return boom }
	if _, err := RunImpact(ctx, Dev, 2, failLoad, s.analyze(2), nil); !errors.Is(err, boom) || !strings.Contains(err.Error(), "imp1") {
		t.Errorf("load failure: %v, want boom naming imp1", err)
	}
	failAnalyze := func(context.Context, impact.Query) (impact.Report, error) { return impact.Report{}, boom }
	if _, err := RunImpact(ctx, Dev, 1, s.load, failAnalyze, nil); !errors.Is(err, boom) {
		t.Errorf("analyze failure: %v, want boom", err)
	}
	for _, c := range []struct {
		split Split
		n     int
	}{{"train", 1}, {Dev, 0}, {Test, testSeedBase + 1}} {
		if _, err := RunImpact(ctx, c.split, c.n, s.load, s.analyze(1), nil); err == nil {
			t.Errorf("split %q, n %d: no error", c.split, c.n)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := RunImpact(cancelled, Dev, 1, s.load, s.analyze(1), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// impactLoadEnv names a split to load into the embedded store, with its
// size: "dev" or "dev:60". Loading a whole split takes minutes, so the test
// runs only when asked.
const impactLoadEnv = "CORRELATOR_EVAL_IMPACT_LOAD"

// failingUsersQuery counts the distinct users of failing error events in a
// scope and window: at sample rate 1 every failure has its event, so this
// is the truth, and a test that the records arrived where expected.
const failingUsersQuery = `
SELECT uniqExact(user_id)
FROM errors FINAL
WHERE service IN {services:Array(String)}
  AND time >= {from:DateTime64(3, 'UTC')} AND time < {to:DateTime64(3, 'UTC')}
  AND level NOT IN ('warning', 'info', 'debug') AND user_id != ''`

// TestImpactLoadEmbedded loads a split into one embedded database, as the
// suite will, and times it. Its analysis is a test double reading only the
// error events: exact at rate 1, which it checks, and nothing more.
func TestImpactLoadEmbedded(t *testing.T) {
	arg := os.Getenv(impactLoadEnv)
	if arg == "" {
		t.Skip(impactLoadEnv + " not set (dev, test, or dev:N)")
	}
	name, count, _ := strings.Cut(arg, ":")
	split, ok := ParseSplit(name)
	if !ok {
		t.Fatalf("%s=%q: unknown split", impactLoadEnv, arg)
	}
	n := DefaultImpactScenarios
	if count != "" {
		if _, err := fmt.Sscan(count, &n); err != nil {
			t.Fatalf("%s=%q: %v", impactLoadEnv, arg, err)
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "", dataDir, store.Options{}, chdb.Options{Database: dbName(), Conns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = st.Engine().Exec(ctx, "DROP DATABASE IF EXISTS "+st.Database(), nil)
		st.Close()
	}()
	analyze := func(ctx context.Context, q impact.Query) (impact.Report, error) {
		rows, err := st.Engine().Query(ctx, failingUsersQuery, map[string]string{
			"services": store.ParamStrings(q.Services), "from": store.ParamTime(q.From), "to": store.ParamTime(q.To),
		})
		if err != nil {
			return impact.Report{}, err
		}
		defer rows.Close()
		var users uint64
		for rows.Next() {
			if err := rows.Scan(&users); err != nil {
				return impact.Report{}, err
			}
		}
		u := float64(users)
		return impact.Report{AffectedUsers: impact.Affected{Count: impact.Count{Observed: users, Estimate: u, Low: u, High: u}}}, rows.Err()
	}
	var progress bytes.Buffer
	r, err := RunImpact(ctx, split, n, st.Write, analyze, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Logf("%s split, %d scenarios: %d records loaded in %.1f s (%.0f records/s), analysed in %.1f s",
		split, n, r.Records, r.LoadS, float64(r.Records)/r.LoadS, r.AnalyzeS)
	for _, c := range r.Cases {
		if c.Truth.Spec.SampleRate == 1 && !c.Exact {
			t.Errorf("%s: %d failing users in the store, truth %d", c.Truth.Spec.Name, c.Answer.Users.Observed, c.Truth.AffectedUsers)
		}
	}
}
