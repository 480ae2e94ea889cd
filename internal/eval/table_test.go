package eval

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// handMadeReport is a report of two families over hand-made answers.
func handMadeReport() *Report {
	res := func(f scenario.Family, seed uint64, truth string, eng, base *correlate.Answer, lat float64) ScenarioResult {
		return ScenarioResult{Family: f, Seed: seed, Truth: truth,
			Engine: Judge(eng, truth, lat, false), Baseline: Judge(base, truth, lat/2, false)}
	}
	rep := &Report{
		Split: Dev, PerFamily: 3, Parallel: 2, FirstSeed: 1, LastSeed: 3,
		Families:  []scenario.Family{scenario.BadDeploy, "slow-regression"},
		Lookbacks: map[string]string{string(scenario.BadDeploy): "2h", "slow-regression": "8h"},
		Model:     correlate.Model{AbstainBelow: 0.3, Trained: "hand-made"},
		DurationS: 6, ScenarioS: 2,
		Scenarios: []ScenarioResult{
			res(scenario.BadDeploy, 1, "c", answer("cause", cand{"c", .9}, cand{"x", .1}), answer("cause", cand{"x", .6}, cand{"c", .5}), 80),
			res(scenario.BadDeploy, 2, "c", answer("cause", cand{"c", .8}), answer("cause", cand{"c", .7}), 120),
			res(scenario.BadDeploy, 3, "", answer("abstain", cand{"x", .1}), answer("cause", cand{"x", .4}), 90),
			res("slow-regression", 1, "c", answer("abstain", cand{"c", .2}), answer("cause", cand{"y", .5}, cand{"c", .3}), 300),
			res("slow-regression", 2, "c", answer("cause", cand{"y", .6}, cand{"c", .3}), answer("cause", cand{"c", .4}), 250),
			res("slow-regression", 3, "c", answer("cause", cand{"c", .9}), answer("cause", cand{"c", .9}), 210),
		},
	}
	rep.Summarize()
	return rep
}

func TestWriteTable(t *testing.T) {
	rep := handMadeReport()
	var b bytes.Buffer
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "table.golden", b.Bytes())
}

// checkGolden compares got with testdata/name; go test -update rewrites
// the file instead.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("table differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
}

func TestTargets(t *testing.T) {
	rep := handMadeReport()
	want := map[string]string{
		"overall top-1":      StatusFail, // 4/6
		"overall top-3":      StatusPass, // 6/6: an abstention over the truth and a rank 2 count
		"false-blame":        StatusPass, // 0/1
		"every family top-1": StatusFail, // slow-regression 1/3
	}
	for _, tr := range rep.Targets {
		if tr.Status != want[tr.Name] {
			t.Errorf("%s: %s, want %s", tr.Name, tr.Status, want[tr.Name])
		}
	}
	if rep.Pass {
		t.Error("report passes")
	}
	// Without abstain-truth scenarios false blame is not applicable, and
	// does not fail the run.
	rep.Scenarios = rep.Scenarios[3:]
	rep.Summarize()
	for _, tr := range rep.Targets {
		if tr.Name == "false-blame" && (tr.Status != StatusNA || !tr.Pass) {
			t.Errorf("false-blame without data: %+v", tr)
		}
	}
}
