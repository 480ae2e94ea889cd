package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/impact"
)

// The impact suite measures how well the impact analysis counts the users
// an incident hurt: it generates scenarios with known truth (impactgen.go),
// loads them all into one store, asks for each scenario's window and scores
// the answers per sample rate. Nothing here knows how the analysis works;
// it is judged only on what it answers.

// DefaultImpactScenarios is the size of an impact split: 33 scenarios per
// sample rate, about 1.8 million records.
const DefaultImpactScenarios = 198

// ImpactCase is one scenario: its truth, the analysis' answer and the score.
type ImpactCase struct {
	Seed      uint64       `json:"seed"`
	Truth     ImpactTruth  `json:"truth"`
	Answer    ImpactAnswer `json:"answer"`
	LoadMS    float64      `json:"load_ms"`
	AnalyzeMS float64      `json:"analyze_ms"`
	// The relative errors, |answer − truth| / truth (truth 0 counts as 1).
	// UsersErr and UsersBias (signed) are of the users estimate, ObservedErr
	// of the users seen (the naive, uncorrected figure), Width the
	// interval's width relative to the truth.
	UsersErr    float64 `json:"users_err"`
	UsersBias   float64 `json:"users_bias"`
	ObservedErr float64 `json:"observed_err"`
	// FloorErr is the error of an estimator that knew how often every
	// affected user failed (see ImpactTruth.ExpectedSeen): the noise of
	// the sample itself.
	FloorErr     float64 `json:"floor_err"`
	Width        float64 `json:"width"`
	ExcessErr    float64 `json:"excess_err"`
	CustomersErr float64 `json:"customers_err"`
	ActiveErr    float64 `json:"active_err"`
	// Covered is whether the users interval [Low, High] holds the truth;
	// Exact whether it is zero-width at the truth, as it must be when
	// nothing was sampled away.
	Covered bool `json:"covered"`
	Exact   bool `json:"exact"`
	// ExcessCovered is whether the excess users interval [ExcessLow,
	// ExcessHigh] holds the true excess.
	ExcessCovered bool `json:"excess_covered"`
	// Problem names an answer that is not a number; its errors are then
	// maxErr.
	Problem string `json:"problem,omitempty"`
}

// ImpactAnswer is the part of an impact.Report the suite scores.
type ImpactAnswer struct {
	Users     impact.Affected `json:"users"`
	Customers impact.Affected `json:"customers"`
	Active    impact.Count    `json:"active"`
}

// ImpactRate summarises the scenarios of one sample rate (or, with Rate 0,
// of every rate below 1). Medians are nil when there are no scenarios.
type ImpactRate struct {
	Rate      float64 `json:"rate"`
	Scenarios int     `json:"scenarios"`
	// Median relative errors, and UsersErrP90 the 90th percentile of the
	// users estimate's.
	UsersErr     *float64 `json:"users_err"`
	UsersErrP90  *float64 `json:"users_err_p90"`
	UsersBias    *float64 `json:"users_bias"`
	ObservedErr  *float64 `json:"observed_err"`
	FloorErr     *float64 `json:"floor_err"`
	Width        *float64 `json:"width"`
	ExcessErr    *float64 `json:"excess_err"`
	CustomersErr *float64 `json:"customers_err"`
	ActiveErr    *float64 `json:"active_err"`
	// Coverage is the share of users intervals holding the truth; Exact
	// counts zero-width intervals at the truth.
	Coverage *float64 `json:"coverage"`
	Exact    int      `json:"exact"`
	// ExcessCoverage is the share of excess users intervals holding the
	// true excess.
	ExcessCoverage *float64 `json:"excess_coverage"`
}

// ImpactResult is an impact suite run.
type ImpactResult struct {
	Split     Split     `json:"split"`
	FirstSeed uint64    `json:"first_seed"`
	LastSeed  uint64    `json:"last_seed"`
	Started   time.Time `json:"started"`
	Records   int       `json:"records"`
	// Capped counts the scenarios whose traffic the record budget lowered.
	Capped    int     `json:"capped"`
	LoadS     float64 `json:"load_s"`
	AnalyzeS  float64 `json:"analyze_s"`
	DurationS float64 `json:"duration_s"`
	// Rates has one summary per sample rate, highest first; Sampled sums
	// up every rate below 1.
	Rates   []ImpactRate   `json:"rates"`
	Sampled ImpactRate     `json:"sampled"`
	Targets []TargetResult `json:"targets"`
	Pass    bool           `json:"pass"`
	Cases   []ImpactCase   `json:"cases"`
}

// The impact targets.
const (
	// ImpactMaxMedianErr is the largest median relative error of the users
	// estimate allowed at every sample rate of at least ImpactTargetMinRate.
	ImpactMaxMedianErr  = 0.05
	ImpactTargetMinRate = 0.1
	// The users interval, nominally 90%, must cover the truth in between
	// ImpactMinCoverage and ImpactMaxCoverage of the sampled scenarios: less
	// is overconfident, more is needlessly wide.
	ImpactMinCoverage = 0.85
	ImpactMaxCoverage = 0.95
)

// RunImpact runs the impact suite on split's first n scenarios: it loads
// every scenario with load, then asks analyze about each one's window and
// scores the answers. load must have made the records readable when it
// returns. Scenarios have their own services and time, so they share one
// store. One line per scenario and phase goes to progress (nil: none).
func RunImpact(ctx context.Context, split Split, n int,
	load func(ctx context.Context, b *event.Batch) error,
	analyze func(ctx context.Context, q impact.Query) (impact.Report, error),
	progress io.Writer) (ImpactResult, error) {
	switch {
	case split != Dev && split != Test:
		return ImpactResult{}, fmt.Errorf("invalid split %q (want dev or test)", split)
	case n <= 0 || n > testSeedBase:
		return ImpactResult{}, fmt.Errorf("invalid impact scenario count %d: want 1..%d", n, testSeedBase)
	case load == nil || analyze == nil:
		return ImpactResult{}, errors.New("run impact suite: load and analyze are required")
	}
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	seeds := split.Seeds(n)
	res := ImpactResult{Split: split, FirstSeed: seeds[0], LastSeed: seeds[len(seeds)-1], Started: start.UTC().Truncate(time.Second)}
	res.Cases = make([]ImpactCase, n)
	w := digits(n)

	// Load everything first: each scenario is then analysed beside all the
	// others, as in a real store.
	for i, seed := range seeds {
		if err := ctx.Err(); err != nil {
			return ImpactResult{}, err
		}
		spec := ImpactSpecFor(seed)
		b, truth := GenerateImpact(seed, spec, ImpactStart(i))
		t := time.Now()
		if err := load(ctx, b); err != nil {
			return ImpactResult{}, fmt.Errorf("load impact scenario %s: %w", spec.Name, err)
		}
		c := &res.Cases[i]
		c.Seed, c.Truth, c.LoadMS = seed, truth, ms(time.Since(t))
		res.Records += truth.Records
		if spec.Capped != "" {
			res.Capped++
		}
		res.LoadS += c.LoadMS / 1000
		fmt.Fprintf(progress, "[%*d/%d] load %-10s rate %-5g users %5d mean %2g share %.2f fail %.1f: %6d records in %.1fs (elapsed %s)\n",
			w, i+1, n, spec.Name, spec.SampleRate, spec.Users, spec.MeanRequests, spec.AffectedShare, spec.FailProb,
			truth.Records, c.LoadMS/1000, time.Since(start).Round(time.Second))
	}
	for i := range res.Cases {
		if err := ctx.Err(); err != nil {
			return ImpactResult{}, err
		}
		c := &res.Cases[i]
		t := time.Now()
		rep, err := analyze(ctx, c.Truth.Query)
		if err != nil {
			return ImpactResult{}, fmt.Errorf("analyze impact scenario %s: %w", c.Truth.Spec.Name, err)
		}
		c.AnalyzeMS = ms(time.Since(t))
		c.score(rep)
		res.AnalyzeS += c.AnalyzeMS / 1000
		fmt.Fprintf(progress, "[%*d/%d] %-10s rate %-5g %s  %.2fs\n", w, i+1, n, c.Truth.Spec.Name, c.Truth.Spec.SampleRate, caseLine(c), c.AnalyzeMS/1000)
	}
	res.DurationS = time.Since(start).Seconds()
	res.Summarize()
	return res, nil
}

// maxErr stands for the error of an answer that is not a number: a finite
// value, so the result still encodes as JSON, and larger than any real one.
const maxErr = math.MaxFloat64

// score fills c's answer and errors from rep.
func (c *ImpactCase) score(rep impact.Report) {
	t := c.Truth
	c.Answer = ImpactAnswer{Users: rep.AffectedUsers, Customers: rep.AffectedCustomers, Active: rep.ActiveUsers}
	u := rep.AffectedUsers
	var bad []string
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"users estimate", u.Estimate}, {"users low", u.Low}, {"users high", u.High}, {"users excess", u.Excess},
		{"customers estimate", rep.AffectedCustomers.Estimate}, {"active estimate", rep.ActiveUsers.Estimate},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		// Keep the report encodable: a non-number becomes 0 in the answer
		// and maxErr in every error.
		c.Problem = "not a number: " + strings.Join(bad, ", ")
		c.Answer = ImpactAnswer{}
		c.UsersErr, c.UsersBias, c.ObservedErr, c.Width = maxErr, maxErr, maxErr, maxErr
		c.ExcessErr, c.CustomersErr, c.ActiveErr = maxErr, maxErr, maxErr
		return
	}
	truth := float64(t.AffectedUsers)
	c.UsersBias = relDiff(u.Estimate, t.AffectedUsers)
	c.UsersErr = math.Abs(c.UsersBias)
	c.ObservedErr = math.Abs(relDiff(float64(u.Observed), t.AffectedUsers))
	if t.ExpectedSeen > 0 {
		c.FloorErr = math.Abs(float64(u.Observed)/t.ExpectedSeen - 1)
	}
	c.Width = (u.High - u.Low) / max(truth, 1)
	c.ExcessErr = math.Abs(relDiff(u.Excess, t.ExcessUsers))
	c.CustomersErr = math.Abs(relDiff(rep.AffectedCustomers.Estimate, t.AffectedCustomers))
	c.ActiveErr = math.Abs(relDiff(rep.ActiveUsers.Estimate, t.ActiveUsers))
	// A hair of slack for estimates that are sums of floats.
	eps := 1e-9 * max(truth, 1)
	c.Covered = u.Low-eps <= truth && truth <= u.High+eps
	c.Exact = u.High-u.Low <= eps && math.Abs(u.Estimate-truth) <= eps
	excess := float64(t.ExcessUsers)
	c.ExcessCovered = u.ExcessLow-eps <= excess && excess <= u.ExcessHigh+eps
}

// relDiff is (x − truth) / truth, with a truth of 0 counting as 1.
func relDiff(x float64, truth int) float64 {
	return (x - float64(truth)) / max(float64(truth), 1)
}

// caseLine says in a line how one scenario went.
func caseLine(c *ImpactCase) string {
	if c.Problem != "" {
		return "✗ " + c.Problem
	}
	u, t := c.Answer.Users, c.Truth
	mark := "✗"
	if c.Covered {
		mark = "✓"
	}
	return fmt.Sprintf("users %d est %.0f [%.0f, %.0f] %s err %s | seen %d | excess %d est %.0f | customers %d est %.0f | active %d est %.0f",
		t.AffectedUsers, u.Estimate, u.Low, u.High, mark, pct(c.UsersErr), u.Observed,
		t.ExcessUsers, u.Excess, t.AffectedCustomers, c.Answer.Customers.Estimate, t.ActiveUsers, c.Answer.Active.Estimate)
}

// Summarize computes the per-rate summaries and the targets from Cases.
func (r *ImpactResult) Summarize() {
	by := map[float64][]*ImpactCase{}
	var sampled []*ImpactCase
	for i := range r.Cases {
		c := &r.Cases[i]
		rate := c.Truth.Spec.SampleRate
		by[rate] = append(by[rate], c)
		if rate < 1 {
			sampled = append(sampled, c)
		}
	}
	rates := make([]float64, 0, len(by))
	for rate := range by {
		rates = append(rates, rate)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(rates)))
	r.Rates = r.Rates[:0]
	for _, rate := range rates {
		r.Rates = append(r.Rates, summarizeRate(rate, by[rate]))
	}
	r.Sampled = summarizeRate(0, sampled)
	r.Targets = r.evaluateTargets()
	r.Pass = true
	for _, t := range r.Targets {
		if !t.Pass {
			r.Pass = false
		}
	}
}

func summarizeRate(rate float64, cases []*ImpactCase) ImpactRate {
	s := ImpactRate{Rate: rate, Scenarios: len(cases)}
	if len(cases) == 0 {
		return s
	}
	col := func(f func(c *ImpactCase) float64) []float64 {
		xs := make([]float64, len(cases))
		for i, c := range cases {
			xs[i] = f(c)
		}
		sort.Float64s(xs)
		return xs
	}
	at := func(xs []float64, q float64) *float64 { v := quantileOf(xs, q); return &v }
	usersErr := col(func(c *ImpactCase) float64 { return c.UsersErr })
	s.UsersErr, s.UsersErrP90 = at(usersErr, 0.5), at(usersErr, 0.9)
	s.UsersBias = at(col(func(c *ImpactCase) float64 { return c.UsersBias }), 0.5)
	s.ObservedErr = at(col(func(c *ImpactCase) float64 { return c.ObservedErr }), 0.5)
	s.FloorErr = at(col(func(c *ImpactCase) float64 { return c.FloorErr }), 0.5)
	s.Width = at(col(func(c *ImpactCase) float64 { return c.Width }), 0.5)
	s.ExcessErr = at(col(func(c *ImpactCase) float64 { return c.ExcessErr }), 0.5)
	s.CustomersErr = at(col(func(c *ImpactCase) float64 { return c.CustomersErr }), 0.5)
	s.ActiveErr = at(col(func(c *ImpactCase) float64 { return c.ActiveErr }), 0.5)
	covered, excessCovered := 0, 0
	for _, c := range cases {
		if c.Covered {
			covered++
		}
		if c.ExcessCovered {
			excessCovered++
		}
		if c.Exact {
			s.Exact++
		}
	}
	cov := float64(covered) / float64(len(cases))
	s.Coverage = &cov
	ecov := float64(excessCovered) / float64(len(cases))
	s.ExcessCoverage = &ecov
	return s
}

// quantileOf reads the q-quantile of sorted xs, interpolating between the
// two middle values for the median of an even count. Errors of maxErr
// interpolate to huge, which is what they are.
func quantileOf(xs []float64, q float64) float64 {
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	f := pos - float64(i)
	if f == 0 {
		return xs[i]
	}
	return xs[i] + f*(xs[i+1]-xs[i])
}

// evaluateTargets judges the targets: the users estimate's median error at
// every sample rate of at least ImpactTargetMinRate, the interval's
// coverage over the sampled scenarios, and exactness at rate 1.
func (r *ImpactResult) evaluateTargets() []TargetResult {
	var out []TargetResult
	judge := func(name string, atLeast bool, threshold float64, v *float64, detail string) {
		tr := TargetResult{Name: name, Op: "<=", Threshold: threshold, Value: v, Detail: detail}
		if atLeast {
			tr.Op = ">="
		}
		switch {
		case v == nil:
			tr.Status = StatusNA
		case atLeast && *v >= threshold, !atLeast && *v <= threshold:
			tr.Status = StatusPass
		default:
			tr.Status = StatusFail
		}
		tr.Pass = tr.Status != StatusFail
		out = append(out, tr)
	}
	summary := func(rate float64) *ImpactRate {
		for i := range r.Rates {
			if r.Rates[i].Rate == rate {
				return &r.Rates[i]
			}
		}
		return nil
	}
	// The grid's rates, and any other a hand-made result has.
	rates := slices.Clone(ImpactSampleRates)
	for _, s := range r.Rates {
		if !slices.Contains(rates, s.Rate) {
			rates = append(rates, s.Rate)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(rates)))
	for _, rate := range rates {
		if rate < ImpactTargetMinRate {
			continue
		}
		var v *float64
		detail := "no scenario"
		if s := summary(rate); s != nil {
			v, detail = s.UsersErr, plural(s.Scenarios, "scenario")
		}
		judge(fmt.Sprintf("users median error at rate %g", rate), false, ImpactMaxMedianErr, v, detail)
	}
	cov, detail := r.Sampled.Coverage, "no sampled scenario"
	if cov != nil {
		detail = fmt.Sprintf("%d of %s at rates below 1", int(math.Round(*cov*float64(r.Sampled.Scenarios))), plural(r.Sampled.Scenarios, "scenario"))
	}
	judge("users interval coverage", true, ImpactMinCoverage, cov, detail)
	judge("users interval coverage", false, ImpactMaxCoverage, cov, detail)
	var exact *float64
	detail = "no scenario at rate 1"
	if s := summary(1); s != nil {
		v := float64(s.Exact) / float64(s.Scenarios)
		exact, detail = &v, fmt.Sprintf("%d of %s zero-width at the truth", s.Exact, plural(s.Scenarios, "scenario"))
	}
	judge("users exact at rate 1", true, 1, exact, detail)
	return out
}

// impactColumns are the table's columns after the rate and the count.
var impactColumns = []struct {
	title string
	cell  func(s *ImpactRate) string
}{
	{"users err", func(s *ImpactRate) string { return pctp(s.UsersErr) }},
	{"p90 err", func(s *ImpactRate) string { return pctp(s.UsersErrP90) }},
	{"bias", func(s *ImpactRate) string { return signedPct(s.UsersBias) }},
	{"naive err", func(s *ImpactRate) string { return pctp(s.ObservedErr) }},
	{"floor err", func(s *ImpactRate) string { return pctp(s.FloorErr) }},
	{"coverage", func(s *ImpactRate) string {
		if s.Rate == 1 {
			return fmt.Sprintf("exact %d/%d", s.Exact, s.Scenarios)
		}
		return pctp(s.Coverage)
	}},
	{"width", func(s *ImpactRate) string { return pctp(s.Width) }},
	{"excess err", func(s *ImpactRate) string { return pctp(s.ExcessErr) }},
	{"excess cov", func(s *ImpactRate) string { return pctp(s.ExcessCoverage) }},
	{"customers err", func(s *ImpactRate) string { return pctp(s.CustomersErr) }},
	{"active err", func(s *ImpactRate) string { return pctp(s.ActiveErr) }},
}

// WriteImpactTable writes r for a person: a heading, one row per sample
// rate and one for every sampled rate together, and the targets with PASS
// or FAIL.
func WriteImpactTable(w io.Writer, r ImpactResult) {
	var b strings.Builder
	fmt.Fprintf(&b, "correlator impact eval: %s split (seeds %d..%d), %d scenarios, %d records (%d capped by the record budget); load %.0f s, analysis %.0f s, total %.0f s\n",
		r.Split, r.FirstSeed, r.LastSeed, len(r.Cases), r.Records, r.Capped, r.LoadS, r.AnalyzeS, r.DurationS)
	b.WriteString("err: median |answer − truth| / truth; naive: users seen, uncorrected; bias: median signed error;\n")
	b.WriteString("floor: median error of an oracle that knew how often each affected user failed (the sample's own noise);\n")
	b.WriteString("coverage: share of 90% users intervals holding the truth; width: median (high − low) / truth;\n")
	b.WriteString("excess: users who failed only because of the incident; excess cov: share of 90% excess intervals holding it\n\n")
	head := []string{"rate", "n"}
	for _, c := range impactColumns {
		head = append(head, c.title)
	}
	row := func(name string, s *ImpactRate) []string {
		cells := []string{name, fmt.Sprint(s.Scenarios)}
		for _, c := range impactColumns {
			cells = append(cells, c.cell(s))
		}
		return cells
	}
	var rows [][]string
	for i := range r.Rates {
		rows = append(rows, row(fmt.Sprintf("%g", r.Rates[i].Rate), &r.Rates[i]))
	}
	rows = append(rows, row("below 1", &r.Sampled))
	width := make([]int, len(head))
	for _, cells := range append([][]string{head}, rows...) {
		for i, c := range cells {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	const gap = 3
	total := 0
	for _, wd := range width {
		total += wd + gap
	}
	rule := strings.Repeat("─", total-gap) + "\n"
	line := func(cells []string) {
		for i, c := range cells {
			if i == 0 {
				b.WriteString(pad(c, width[i], false))
				continue
			}
			b.WriteString(strings.Repeat(" ", gap) + pad(c, width[i], true))
		}
		b.WriteString("\n")
	}
	line(head)
	b.WriteString(rule)
	for i, cells := range rows {
		if i == len(rows)-1 {
			b.WriteString(rule)
		}
		line(cells)
	}
	b.WriteString("\ntargets (users):\n")
	for _, t := range r.Targets {
		op, detail := t.symbols()
		fmt.Fprintf(&b, "  %-4s  %-32s %s %-6s  %6s%s\n", t.Status, t.Name, op, pct(t.Threshold), pctp(t.Value), detail)
	}
	status := StatusPass
	if !r.Pass {
		status = StatusFail
	}
	fmt.Fprintf(&b, "result: %s\n", status)
	// The writer's error is the caller's to see on its own writer (a
	// file's Close, a buffer never fails); the table has nothing to add.
	_, _ = io.WriteString(w, b.String())
}

// pct writes a ratio as a percentage; errors too large to mean anything
// (an answer that was not a number) read ∞.
func pct(v float64) string {
	switch {
	case v >= 1e6:
		return "∞"
	case v >= 10:
		return fmt.Sprintf("%.0f%%", 100*v)
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func pctp(v *float64) string {
	if v == nil {
		return "—"
	}
	return pct(*v)
}

func signedPct(v *float64) string {
	switch {
	case v == nil:
		return "—"
	case *v < 0:
		return "−" + pct(-*v)
	}
	return "+" + pct(*v)
}
