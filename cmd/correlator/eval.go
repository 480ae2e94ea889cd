package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/correlator/correlator/internal/correlate"
	"github.com/correlator/correlator/internal/eval"
	"github.com/correlator/correlator/internal/impact"
	"github.com/correlator/correlator/internal/store"
	"github.com/correlator/correlator/internal/store/chdb"
)

// cmdEval runs the evaluation suite: scenarios of every family with known
// causes, loaded through the ingest API into fresh embedded databases and
// asked "what changed?" over HTTP; the engine is scored beside the
// baseline against its targets. With --fit it refits the engine's model on
// the dev split.
func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	split := fs.String("split", string(eval.Dev), "seed split: dev (seeds 1..N, for tuning) or test (seeds 100001..100000+N, for reporting)")
	perFamily := fs.Int("per-family", 25, "scenarios per family")
	families := fs.String("families", "", "comma-separated families (default: all)")
	jsonPath := fs.String("json", "eval-results.json", "write the full results as JSON to this file (empty: none)")
	dataDir := fs.String("data-dir", "", "embedded store directory for the scenario databases (default: a temporary directory, removed afterwards)")
	chdbLib := fs.String("chdb-lib", "", "path of libchdb.so (default $CORRELATOR_CHDB_LIB or the make-installed copy)")
	parallel := fs.Int("parallel", 2, "scenarios loaded at once, each in its own database")
	modelPath := fs.String("model", "", "score with this model JSON instead of the built-in one")
	strict := fs.Bool("strict", false, "exit 1 when a target fails")
	features := fs.Bool("features", false, "keep every candidate's features and evidence in the JSON results, for analysis")
	fit := fs.Bool("fit", false, "fit the engine's model on the dev split and write it to --model-out")
	l2 := fs.Float64("l2", 0.01, "with --fit: L2 penalty")
	iterations := fs.Int("iterations", 3000, "with --fit: gradient-descent iterations")
	modelOut := fs.String("model-out", "internal/correlate/model.json", "with --fit: where to write the model")
	impactN := fs.Int("impact-scenarios", eval.DefaultImpactScenarios, "impact scenarios (known affected users) after the ranking suite; 0 skips them")
	impactOnly := fs.Bool("impact-only", false, "run only the impact suite")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sp, ok := eval.ParseSplit(*split)
	if !ok {
		return fmt.Errorf("flag --split: unknown split %q (want dev or test)", *split)
	}
	if *fit && sp != eval.Dev {
		return fmt.Errorf("flag --fit: the model is fitted on the dev split only, never on test")
	}
	if *parallel < 1 {
		return fmt.Errorf("flag --parallel: must be at least 1")
	}
	if *impactN < 0 || (*impactOnly && *impactN == 0) {
		return fmt.Errorf("flag --impact-scenarios: want a positive number (0 skips the impact suite, which --impact-only runs alone)")
	}
	if *impactOnly && *fit {
		return fmt.Errorf("flag --impact-only: the impact suite fits nothing; drop --fit")
	}
	if *fit && (*l2 < 0 || *iterations < 1) {
		return fmt.Errorf("flags --l2 and --iterations: want l2 ≥ 0 and at least one iteration")
	}
	fams, err := eval.ParseFamilies(*families)
	if err != nil {
		return fmt.Errorf("flag --families: %w", err)
	}
	var model *correlate.Model
	if *modelPath != "" {
		m, err := readModel(*modelPath)
		if err != nil {
			return fmt.Errorf("flag --model: %w", err)
		}
		model = &m
	}
	dir := *dataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "correlator-eval-*")
		if err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *impactOnly {
		res, err := runImpactEval(ctx, sp, *impactN, dir, *chdbLib, stderr)
		if err != nil {
			return err
		}
		if *jsonPath != "" {
			if err := eval.WriteJSON(*jsonPath, res); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "eval: wrote %s\n", *jsonPath)
		}
		eval.WriteImpactTable(stdout, *res)
		if *strict && !res.Pass {
			fmt.Fprintln(stderr, "correlator eval: impact targets not met (--strict)")
			return exitError{1}
		}
		return nil
	}
	opt := eval.Options{
		Split: sp, PerFamily: *perFamily, Families: fams, DataDir: dir, ChDBLib: *chdbLib,
		Parallel: *parallel, Model: model, Progress: stderr, Logger: log, KeepFeatures: *features,
	}
	fmt.Fprintf(stderr, "eval: %s split, %d families × %d scenarios, %d at a time, store %s\n", sp, len(fams), *perFamily, *parallel, dir)
	var rep *eval.Report
	if *fit {
		fopt := eval.FitOptions{L2: *l2, Iterations: *iterations}
		fmt.Fprintln(stderr, "eval: fit, run 1 of 2: the current model, for the features")
		// Fit runs the split twice; the second run's progress says so.
		f, err := eval.Fit(ctx, opt, fopt, func() { fmt.Fprintln(stderr, "eval: fit, run 2 of 2: the fitted weights, for the threshold") })
		if err != nil {
			return err
		}
		f.Describe(fopt, time.Now())
		rep = f.Before
		if err := report(rep, *jsonPath, stdout, stderr); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "\nThe same split with the fitted model (in-sample, so optimistic):")
		if err := eval.WriteTable(stdout, f.After); err != nil {
			return err
		}
		printModel(stdout, f, fopt)
		if err := eval.WriteModel(*modelOut, f.Model); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s; rebuild to embed it, or pass --model %s to evaluate it now\n", *modelOut, *modelOut)
	} else {
		r, err := eval.NewRunner(opt)
		if err != nil {
			return err
		}
		if rep, err = r.Run(ctx); err != nil {
			return err
		}
		if *impactN > 0 {
			if rep.Impact, err = runImpactEval(ctx, sp, *impactN, dir, *chdbLib, stderr); err != nil {
				return err
			}
		}
		if err := report(rep, *jsonPath, stdout, stderr); err != nil {
			return err
		}
	}
	if *strict && (!rep.Pass || (rep.Impact != nil && !rep.Impact.Pass)) {
		fmt.Fprintln(stderr, "correlator eval: targets not met (--strict)")
		return exitError{1}
	}
	return nil
}

// report writes the JSON file, if any, and prints the table.
func report(rep *eval.Report, jsonPath string, stdout, stderr io.Writer) error {
	if jsonPath != "" {
		if err := eval.WriteJSON(jsonPath, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "eval: wrote %s\n", jsonPath)
	}
	if err := eval.WriteTable(stdout, rep); err != nil {
		return err
	}
	if rep.Impact != nil {
		fmt.Fprintln(stdout)
		eval.WriteImpactTable(stdout, *rep.Impact)
	}
	return nil
}

// runImpactEval runs the impact suite on a database of its own in the
// evaluation's directory, through the analyzer serve uses, with the
// default configuration.
func runImpactEval(ctx context.Context, sp eval.Split, n int, dir, lib string, stderr io.Writer) (*eval.ImpactResult, error) {
	fmt.Fprintf(stderr, "eval: impact suite, %s split, %d scenarios\n", sp, n)
	st, err := store.Open(ctx, "", dir, store.Options{}, chdb.Options{Database: "impact_eval", Lib: lib})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	an := impact.New(st, impact.DefaultConfig())
	res, err := eval.RunImpact(ctx, sp, n, st.Write, an.Impact, stderr)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// printModel prints the fitted weights and threshold.
func printModel(w io.Writer, f *eval.FitResult, opt eval.FitOptions) {
	fmt.Fprintf(w, "\nfitted model (%d candidates, %d causes, l2 %g, %d iterations):\n", f.Samples, f.Positives, opt.L2, opt.Iterations)
	names := make([]string, 0, len(f.Model.Weights))
	for k := range f.Model.Weights {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  %-24s %+8.3f\n", "bias", f.Model.Bias)
	for _, k := range names {
		fmt.Fprintf(w, "  %-24s %+8.3f\n", k, f.Model.Weights[k])
	}
	fmt.Fprintf(w, "  %-24s %8.4f\n", "abstain_below", f.Model.AbstainBelow)
	if f.After.Engine.Overall.AbstainScenarios == 0 {
		fmt.Fprintln(w, "  warning: no dev scenario lacks a causal change, so abstaining can only cost top-1: the threshold says little")
	}
}

// readModel reads a model JSON file in correlate.Model's format.
func readModel(path string) (correlate.Model, error) {
	var m correlate.Model
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}
