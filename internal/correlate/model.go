package correlate

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Model turns a candidate's features into a calibrated probability that it
// caused the symptoms: logistic regression, σ(bias + Σ weight·feature).
// Logistic regression fitted by maximum likelihood is calibrated on the
// data it was fitted on; the evaluation reports its calibration error on a
// separate test split. AbstainBelow is the probability under which the top
// candidate is not blamed and the answer abstains.
type Model struct {
	Bias         float64            `json:"bias"`
	Weights      map[string]float64 `json:"weights"`
	AbstainBelow float64            `json:"abstain_below"`
	// Trained describes where the weights came from, for humans.
	Trained string `json:"trained,omitempty"`
}

//go:embed model.json
var modelJSON []byte

// DefaultModel is the model shipped with this build (model.json, fitted by
// `correlator eval --fit` on the development split).
func DefaultModel() Model {
	var m Model
	if err := json.Unmarshal(modelJSON, &m); err != nil {
		panic(fmt.Sprintf("correlate: embedded model.json is invalid: %v", err))
	}
	return m
}

// Probability applies the model to features.
func (m Model) Probability(features map[string]float64) float64 {
	z := m.Bias
	for k, w := range m.Weights {
		z += w * features[k]
	}
	return 1 / (1 + math.Exp(-z))
}

// Sample is one candidate's features and whether it was the true cause.
type Sample struct {
	Features map[string]float64
	Cause    bool
}

// FitModel fits logistic-regression weights to samples by gradient descent
// on the L2-regularised log loss (deterministic: fixed step, fixed
// iterations, features in sorted order).
func FitModel(samples []Sample, l2 float64, iterations int) Model {
	names := map[string]bool{}
	for _, s := range samples {
		for k := range s.Features {
			names[k] = true
		}
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := make([]float64, len(keys))
	var b float64
	x := make([][]float64, len(samples))
	for i, s := range samples {
		x[i] = make([]float64, len(keys))
		for j, k := range keys {
			x[i][j] = s.Features[k]
		}
	}
	n := float64(len(samples))
	const step = 0.5
	gw := make([]float64, len(keys))
	for it := 0; it < iterations; it++ {
		for j := range gw {
			gw[j] = l2 * w[j]
		}
		var gb float64
		for i, s := range samples {
			z := b
			for j := range w {
				z += w[j] * x[i][j]
			}
			p := 1 / (1 + math.Exp(-z))
			y := 0.0
			if s.Cause {
				y = 1
			}
			d := (p - y) / n
			gb += d
			for j := range w {
				gw[j] += d * x[i][j]
			}
		}
		b -= step * gb
		for j := range w {
			w[j] -= step * gw[j]
		}
	}
	m := Model{Bias: b, Weights: map[string]float64{}}
	for j, k := range keys {
		m.Weights[k] = w[j]
	}
	return m
}
