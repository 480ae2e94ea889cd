package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/correlator/correlator/internal/scenario"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// dataDir is the one embedded directory of this test process.
var dataDir string

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "correlator-eval-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dataDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// TestRunEndToEnd loads two scenarios of one family through the ingest API
// into their own databases, asks both systems over HTTP, and checks the
// plumbing rather than the engine's quality: every record accepted, the
// truth among the candidates, features kept, databases dropped, the report
// complete.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("loads two scenarios into the embedded store")
	}
	ctx := context.Background()
	r, err := NewRunner(Options{
		Split: Dev, PerFamily: 2, Families: []scenario.Family{scenario.BadDeploy},
		DataDir: dataDir, Parallel: 2, KeepFeatures: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 2 || rep.FirstSeed != 1 || rep.LastSeed != 2 {
		t.Fatalf("report covers %d scenarios, seeds %d..%d", len(rep.Scenarios), rep.FirstSeed, rep.LastSeed)
	}
	for i, res := range rep.Scenarios {
		sc, err := scenario.Generate(ScenarioOptions(scenario.BadDeploy, uint64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Seed != uint64(i+1) || res.Truth != sc.ExpectedCause || res.Service != sc.Service || res.Lookback != "2h" {
			t.Errorf("scenario %d: %+v does not match its generation", i, res)
		}
		if res.Records != sc.Batch.Len() {
			t.Errorf("seed %d: %d records loaded, generated %d", res.Seed, res.Records, sc.Batch.Len())
		}
		for name, o := range map[string]Outcome{"engine": res.Engine, "baseline": res.Baseline} {
			if o.Verdict == "" || o.NumCandidates == 0 || o.LatencyMS <= 0 {
				t.Errorf("seed %d %s: outcome %+v", res.Seed, name, o)
			}
			// Every change in scope and window is a candidate, and the
			// cause is one: if it is missing, loading or asking is broken.
			if o.RankOfTruth == 0 {
				t.Errorf("seed %d %s: the cause %s is not among the candidates %+v", res.Seed, name, res.Truth, o.Top3)
			}
		}
	}
	features := 0
	for _, res := range rep.Scenarios {
		for _, c := range res.Engine.Candidates {
			features += len(c.Features)
		}
	}
	if features == 0 {
		t.Error("no engine candidate kept features: --fit would have nothing to fit")
	}
	if m := rep.Engine.Families[string(scenario.BadDeploy)]; m.Scenarios != 2 || rep.Engine.Overall.Scenarios != 2 {
		t.Errorf("metrics count %d family, %d overall scenarios", m.Scenarios, rep.Engine.Overall.Scenarios)
	}
	if len(rep.Targets) != len(Targets) {
		t.Errorf("%d targets judged, want %d", len(rep.Targets), len(Targets))
	}

	// The scenario databases are dropped.
	st, err := store.Open(ctx, "", dataDir, store.Options{}, chdb.Options{Database: "eval_check", Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.Engine().Query(ctx, "SELECT count() FROM system.databases WHERE startsWith(name, 'eval_') AND name != 'eval_check'", nil)
	if err != nil {
		t.Fatal(err)
	}
	var left uint64
	for rows.Next() {
		if err := rows.Scan(&left); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	if left != 0 {
		t.Errorf("%d scenario databases left behind", left)
	}

	// The JSON report carries the per-scenario detail tooling reads.
	path := filepath.Join(t.TempDir(), "eval.json")
	if err := WriteJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []struct {
			Family string `json:"family"`
			Truth  string `json:"truth"`
			Engine struct {
				Verdict     string `json:"verdict"`
				RankOfTruth int    `json:"rank_of_truth"`
				Top3        []struct {
					ID    string  `json:"id"`
					Score float64 `json:"score"`
				} `json:"top3"`
				LatencyMS float64 `json:"latency_ms"`
			} `json:"engine"`
		} `json:"scenarios"`
		Engine struct {
			Overall struct {
				Top1 *float64 `json:"top1"`
			} `json:"overall"`
		} `json:"engine"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Scenarios) != 2 || back.Scenarios[0].Truth == "" || len(back.Scenarios[0].Engine.Top3) == 0 || back.Engine.Overall.Top1 == nil {
		t.Errorf("JSON report incomplete: %s", data[:min(len(data), 600)])
	}
}

// TestFitEndToEnd fits on one scenario of a cause family and one of an
// abstain family: the plumbing of the two runs, not the model's quality.
func TestFitEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("loads four scenarios into the embedded store")
	}
	second := false
	f, err := Fit(context.Background(), Options{
		Split: Dev, PerFamily: 1, Families: []scenario.Family{scenario.BadDeploy, scenario.ExternalOutage},
		DataDir: dataDir, Parallel: 2,
	}, FitOptions{L2: 0.01, Iterations: 200}, func() { second = true })
	if err != nil {
		t.Fatal(err)
	}
	if !second || f.Before == nil || f.After == nil || len(f.After.Scenarios) != 2 {
		t.Fatalf("fit result incomplete: second run %v, %+v", second, f)
	}
	if len(f.Model.Weights) == 0 || f.Samples == 0 || f.Positives != 1 {
		t.Errorf("model %+v from %d samples, %d positive", f.Model, f.Samples, f.Positives)
	}
	if f.After.Model.AbstainBelow != f.Model.AbstainBelow || f.After.Model.Weights == nil {
		t.Errorf("the after-report does not carry the fitted model")
	}
	if _, err := Fit(context.Background(), Options{Split: Test, PerFamily: 1, DataDir: dataDir}, FitOptions{}, nil); err == nil {
		t.Error("fit on the test split succeeded")
	}
}
