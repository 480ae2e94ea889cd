package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/scenario"
)

// Options configure a Runner.
type Options struct {
	Split     Split
	PerFamily int               // scenarios per family, > 0
	Families  []scenario.Family // empty: every family
	// DataDir is the embedded store directory every scenario's database
	// lives in; required. Only one directory can be open per process.
	DataDir string
	// ChDBLib is the path of libchdb.so; empty means the default.
	ChDBLib string
	// Parallel is how many scenarios are loaded and asked at once, each in
	// its own database; default 2.
	Parallel int
	// Model is the engine's model; nil means correlate.DefaultModel.
	Model *correlate.Model
	// KeepFeatures keeps every engine candidate's features in the results,
	// for Fit.
	KeepFeatures bool
	// Progress receives one line per finished scenario; nil discards them.
	Progress io.Writer
	// Logger receives the store's and the API's events; nil discards them.
	Logger *slog.Logger
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	switch {
	case o.Split != Dev && o.Split != Test:
		return fmt.Errorf("invalid split %q (want dev or test)", o.Split)
	case o.PerFamily <= 0:
		return fmt.Errorf("invalid per-family count %d: must be positive", o.PerFamily)
	case o.PerFamily > testSeedBase:
		return fmt.Errorf("invalid per-family count %d: at most %d, or the splits overlap", o.PerFamily, testSeedBase)
	case o.DataDir == "":
		return errors.New("no data directory given")
	case o.Parallel < 0:
		return fmt.Errorf("invalid parallelism %d", o.Parallel)
	}
	return nil
}

// Runner runs the suite.
type Runner struct {
	opt Options
	log *slog.Logger
}

// NewRunner validates opt and fills in its defaults.
func NewRunner(opt Options) (*Runner, error) {
	if len(opt.Families) == 0 {
		opt.Families = append([]scenario.Family(nil), scenario.Families...)
	}
	if opt.Parallel == 0 {
		opt.Parallel = 2
	}
	if opt.Model == nil {
		m := correlate.DefaultModel()
		opt.Model = &m
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	return &Runner{opt: opt, log: opt.Logger.With("component", "eval")}, nil
}

// ScenarioResult is one scenario and both systems' outcomes.
type ScenarioResult struct {
	Family      scenario.Family `json:"family"`
	Seed        uint64          `json:"seed"`
	Services    int             `json:"services"`
	Service     string          `json:"service"`
	Onset       time.Time       `json:"onset"`
	Detected    time.Time       `json:"detected"`
	Lookback    string          `json:"lookback"`
	Truth       string          `json:"truth"` // "" when no change explains it
	Variant     string          `json:"variant,omitempty"`
	Description string          `json:"description"`
	Records     int             `json:"records"`
	LoadMS      float64         `json:"load_ms"`
	TotalMS     float64         `json:"total_ms"`
	Engine      Outcome         `json:"engine"`
	Baseline    Outcome         `json:"baseline"`
}

// SystemMetrics are one system's metrics overall and per family.
type SystemMetrics struct {
	Overall  Metrics            `json:"overall"`
	Families map[string]Metrics `json:"families"`
}

// Report is the result of a run.
type Report struct {
	Split     Split             `json:"split"`
	PerFamily int               `json:"per_family"`
	Parallel  int               `json:"parallel"`
	FirstSeed uint64            `json:"first_seed"`
	LastSeed  uint64            `json:"last_seed"`
	Families  []scenario.Family `json:"families"`
	Lookbacks map[string]string `json:"lookbacks"`
	// Model is the engine's model during the run.
	Model     correlate.Model `json:"model"`
	Started   time.Time       `json:"started"`
	DurationS float64         `json:"duration_s"`
	// ScenarioS is the mean time one scenario took: generate, load, ask
	// both systems (with Parallel scenarios running at once).
	ScenarioS float64          `json:"scenario_s"`
	Engine    SystemMetrics    `json:"engine"`
	Baseline  SystemMetrics    `json:"baseline"`
	Targets   []TargetResult   `json:"targets"`
	Pass      bool             `json:"pass"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// Impact is the impact suite's result, when it ran.
	Impact *ImpactResult `json:"impact,omitempty"`
}

type job struct {
	i      int
	family scenario.Family
	seed   uint64
}

// Run evaluates every scenario of the split. It stops at the first error.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	o := r.opt
	seeds := o.Split.Seeds(o.PerFamily)
	var jobs []job
	for _, f := range o.Families {
		for _, s := range seeds {
			jobs = append(jobs, job{len(jobs), f, s})
		}
	}
	start := time.Now()
	results := make([]ScenarioResult, len(jobs))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan job)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // mu guards firstErr, done and Progress.
		firstErr error
		done     int
	)
	for range min(o.Parallel, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				res, err := r.runOne(ctx, j)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("scenario %s seed %d: %w", j.family, j.seed, err)
						cancel()
					}
					mu.Unlock()
					continue
				}
				results[j.i] = *res
				done++
				fmt.Fprintf(o.Progress, "[%*d/%d] %-*s seed %-6d %s  %.1fs (elapsed %s)\n",
					digits(len(jobs)), done, len(jobs), familyWidth(o.Families), j.family, j.seed,
					progressLine(res), res.TotalMS/1000, time.Since(start).Round(time.Second))
				mu.Unlock()
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep := &Report{
		Split: o.Split, PerFamily: o.PerFamily, Parallel: o.Parallel, FirstSeed: seeds[0], LastSeed: seeds[len(seeds)-1],
		Families: o.Families, Lookbacks: map[string]string{}, Model: *o.Model,
		Started: start.UTC().Truncate(time.Second), DurationS: time.Since(start).Seconds(),
		Scenarios: results,
	}
	for _, f := range o.Families {
		rep.Lookbacks[string(f)] = formatLookback(LookbackFor(f))
	}
	if len(results) > 0 {
		var sum float64
		for _, res := range results {
			sum += res.TotalMS
		}
		rep.ScenarioS = sum / 1000 / float64(len(results))
	}
	rep.Summarize()
	return rep, nil
}

// Summarize computes the metrics and targets from Scenarios.
func (rep *Report) Summarize() {
	rep.Engine = summarize(rep.Families, rep.Scenarios, func(s *ScenarioResult) *Outcome { return &s.Engine })
	rep.Baseline = summarize(rep.Families, rep.Scenarios, func(s *ScenarioResult) *Outcome { return &s.Baseline })
	rep.Targets = EvaluateTargets(rep)
	rep.Pass = true
	for _, t := range rep.Targets {
		if !t.Pass {
			rep.Pass = false
		}
	}
}

func summarize(families []scenario.Family, results []ScenarioResult, pick func(*ScenarioResult) *Outcome) SystemMetrics {
	sm := SystemMetrics{Families: map[string]Metrics{}}
	var all []Case
	byFamily := map[scenario.Family][]Case{}
	for i := range results {
		c := Case{Truth: results[i].Truth, Outcome: pick(&results[i])}
		all = append(all, c)
		byFamily[results[i].Family] = append(byFamily[results[i].Family], c)
	}
	sm.Overall = Compute(all)
	for _, f := range families {
		sm.Families[string(f)] = Compute(byFamily[f])
	}
	return sm
}

// dbSeq numbers the scenario databases of this process. It is package
// state, like the one embedded directory a process may open: names must be
// unique across every Runner of the process (Fit runs two).
var dbSeq atomic.Int64

// dbName returns a fresh database name: a plain identifier, unique in this
// process and, by the process id, across runs sharing a directory.
func dbName() string {
	return fmt.Sprintf("eval_%d_%d", os.Getpid(), dbSeq.Add(1))
}

// runOne generates one scenario, loads it into a fresh database through
// the ingest API, asks both systems, and drops the database.
func (r *Runner) runOne(ctx context.Context, j job) (res *ScenarioResult, err error) {
	start := time.Now()
	opt := ScenarioOptions(j.family, j.seed)
	sc, err := scenario.Generate(opt)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	h, err := openHarness(ctx, r.opt.DataDir, r.opt.ChDBLib, dbName(), r.opt.Model, r.opt.Logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Closing drops the database even after a cancelled run.
		if cerr := h.close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()
	n, err := h.load(ctx, &sc.Batch)
	if err != nil {
		return nil, err
	}
	loaded := time.Since(start)
	lookback := LookbackFor(j.family)
	res = &ScenarioResult{
		Family: j.family, Seed: j.seed, Services: sc.Options.Services, Service: sc.Service,
		Onset: sc.Onset, Detected: sc.Detected, Lookback: formatLookback(lookback),
		Truth: sc.ExpectedCause, Variant: sc.Variant, Description: sc.Description, Records: n,
		LoadMS: ms(loaded),
	}
	ans, lat, err := h.ask(ctx, h.engine, sc.Service, sc.Detected, lookback)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	res.Engine = Judge(ans, sc.ExpectedCause, ms(lat), r.opt.KeepFeatures)
	ans, lat, err = h.ask(ctx, h.baseline, sc.Service, sc.Detected, lookback)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	res.Baseline = Judge(ans, sc.ExpectedCause, ms(lat), false)
	res.TotalMS = ms(time.Since(start))
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// progressLine says in a few words how both systems did.
func progressLine(res *ScenarioResult) string {
	return fmt.Sprintf("engine %-22s baseline %-22s", outcomeWords(res.Truth, &res.Engine), outcomeWords(res.Truth, &res.Baseline))
}

func outcomeWords(truth string, o *Outcome) string {
	c := Case{Truth: truth, Outcome: o}
	mark := "✗"
	if c.Top1() {
		mark = "✓"
	}
	switch {
	case truth == "":
		return fmt.Sprintf("%s %s (no cause)", mark, o.Verdict)
	case o.RankOfTruth == 0:
		return fmt.Sprintf("%s %s, truth absent", mark, o.Verdict)
	}
	return fmt.Sprintf("%s %s, truth #%d", mark, o.Verdict, o.RankOfTruth)
}

func digits(n int) int { return len(fmt.Sprint(n)) }

func familyWidth(fs []scenario.Family) int {
	w := 0
	for _, f := range fs {
		w = max(w, len(f))
	}
	return w
}

// WriteJSON writes a result (a *Report or an *ImpactResult) to path as
// indented JSON.
func WriteJSON(path string, rep any) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
