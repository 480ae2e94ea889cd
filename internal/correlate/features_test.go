package correlate

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
	"github.com/correlator/correlator/internal/store"
)

func TestRolloutShare(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"off", 0, true}, {"on", 1, true}, {"10%", 0.1, true}, {"100%", 1, true}, {" 50 % ", 0, false},
		{"50", 0.5, true}, {"enabled", 1, true}, {"150%", 0, false}, {"-1%", 0, false}, {"half", 0, false},
	} {
		got, ok := rolloutShare(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("rolloutShare(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// externalCase is a service "api" (calling "db") whose errors jump from 2
// to 30 a minute at the onset, 28 of them failed calls to peer, with an
// innocent deploy of api 25 minutes before.
func externalCase(peer string) (*fakeReader, time.Time) {
	at := base.Add(3 * time.Hour)
	onset := at.Add(-10 * time.Minute)
	f := &fakeReader{
		topo:    map[string][]string{"api": {"db"}, "db": {}},
		changes: []event.Change{{ID: "d1", Time: onset.Add(-25 * time.Minute), Kind: event.ChangeDeploy, Service: "api", Version: "v2"}},
	}
	traffic(f, "api", at.Add(-4*time.Hour), at, 1000, 0.002, onset, 0.03)
	for m := onset; m.Before(at); m = m.Add(time.Minute) {
		f.peers = append(f.peers, store.PeerBucket{Service: "api", Peer: peer, Minute: m, Estimate: 28})
	}
	return f, at
}

func TestExternalShareBlamesTheThirdParty(t *testing.T) {
	for _, tc := range []struct {
		peer     string
		external bool
	}{
		{"api.stripe.com", true},
		{"stripe-api", true},
		{"db.prod.svc", false}, // a service of ours, by host
		{"db:5432", false},
		{"db", false},
		{"db.prod", false},
		{"db.prod.svc.cluster.local:5432", false},
		{"db.example.com", true}, // a public host, whatever its first label
	} {
		f, at := externalCase(tc.peer)
		ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if len(ans.Candidates) != 1 {
			t.Fatalf("%s: %d candidates, want 1", tc.peer, len(ans.Candidates))
		}
		c := ans.Candidates[0]
		own, sym := c.Features["own_external"], c.Features["symptom_external"]
		if !tc.external {
			if own != 0 || sym != 0 {
				t.Errorf("%s is ours, yet own_external %v, symptom_external %v", tc.peer, own, sym)
			}
			continue
		}
		// 28 of the 28 added errors a minute are calls to the third party.
		if own < 0.9 || sym < 0.9 {
			t.Errorf("%s: own_external %v, symptom_external %v; want both ≥ 0.9", tc.peer, own, sym)
		}
		if txt := evidenceText(c); !strings.Contains(txt, "failed calls to "+tc.peer+", a third party") {
			t.Errorf("%s: evidence does not name the third party:\n%s", tc.peer, txt)
		}
	}
}

func TestFlagErrorsAgainstTheRollout(t *testing.T) {
	at := base.Add(3 * time.Hour)
	flip := at.Add(-20 * time.Minute)
	for _, tc := range []struct {
		name     string
		old, new string
		// after and before answer FlagErrors for the window after the flip
		// and for the hour before it, as (on, evaluated).
		after, before [2]uint64
		feature       string // "" means neither flag feature
		text          string
	}{
		{"errors follow the flag", "off", "10%", [2]uint64{90, 100}, [2]uint64{}, "flag_errors_on", "90% of api's errors since the flip had checkout-v2 on, though it was on for 10% of requests"},
		{"errors ignore the flag", "off", "10%", [2]uint64{11, 100}, [2]uint64{}, "flag_errors_even", "no more often than its 10% rollout"},
		{"too few errors", "off", "10%", [2]uint64{4, 4}, [2]uint64{}, "", ""},
		{"full rollout: the hour before tells", "10%", "100%", [2]uint64{100, 100}, [2]uint64{60, 100}, "flag_errors_on", "errors in the hour before the flip had checkout-v2 on"},
		{"full rollout from off: nothing to compare", "off", "100%", [2]uint64{100, 100}, [2]uint64{0, 100}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeReader{
				topo:    map[string][]string{"api": {}},
				changes: []event.Change{{ID: "fl", Time: flip, Kind: event.ChangeFlag, Service: "api", Attributes: map[string]string{"flag": "checkout-v2", "old": tc.old, "new": tc.new}}},
				flagErrors: func(svc, flag string, from, to time.Time) (uint64, uint64) {
					if svc != "api" || flag != "checkout-v2" {
						t.Errorf("FlagErrors(%q, %q)", svc, flag)
					}
					if to.After(flip) {
						return tc.after[0], tc.after[1]
					}
					return tc.before[0], tc.before[1]
				},
			}
			traffic(f, "api", at.Add(-4*time.Hour), at, 1000, 0.002, flip.Add(time.Minute), 0.02)
			ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at})
			if err != nil {
				t.Fatal(err)
			}
			c := ans.Candidates[0]
			for _, name := range []string{"flag_errors_on", "flag_errors_even"} {
				if got := c.Features[name] > 0; got != (name == tc.feature) {
					t.Errorf("feature %s = %v, want set: %v", name, c.Features[name], name == tc.feature)
				}
			}
			if tc.text != "" && !strings.Contains(evidenceText(c), tc.text) {
				t.Errorf("evidence lacks %q:\n%s", tc.text, evidenceText(c))
			}
		})
	}
}

func TestAbstainSaysWhatDoesExplainIt(t *testing.T) {
	abstain := &Model{Bias: -10, AbstainBelow: 0.5}
	f, at := externalCase("api.stripe.com")
	ans, err := New(f, Options{Model: abstain}).WhatChanged(context.Background(), Query{Service: "api", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Verdict != VerdictAbstain || !strings.Contains(ans.Summary, "are failed calls to api.stripe.com, which is not one of our services") {
		t.Errorf("verdict %s, summary %q", ans.Verdict, ans.Summary)
	}

	// Traffic quadruples at the onset; the error rate holds.
	at = base.Add(3 * time.Hour)
	onset := at.Add(-10 * time.Minute)
	f = &fakeReader{topo: map[string][]string{"api": {}}, changes: []event.Change{{ID: "d1", Time: onset.Add(-20 * time.Minute), Kind: event.ChangeDeploy, Service: "api"}}}
	traffic(f, "api", at.Add(-4*time.Hour), onset, 1000, 0.002, time.Time{}, 0)
	traffic(f, "api", onset, at, 4000, 0.002, time.Time{}, 0)
	ans, err = New(f, Options{Model: abstain}).WhatChanged(context.Background(), Query{Service: "api", At: at, Onset: onset})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Verdict != VerdictAbstain || !strings.Contains(ans.Summary, "Traffic to api rose 4.0× at the onset") {
		t.Errorf("verdict %s, summary %q", ans.Verdict, ans.Summary)
	}
}

func TestDetectedOnsetMinuteToleratesChangesWithinIt(t *testing.T) {
	at := base.Add(3 * time.Hour)
	onset := at.Add(-20 * time.Minute) // on the minute: the change point's bucket
	for _, tc := range []struct {
		offset time.Duration
		after  bool
	}{
		{20 * time.Second, false}, // inside the onset minute: may be the cause
		{-2 * time.Minute, false},
		{90 * time.Second, true},
	} {
		f := &fakeReader{topo: map[string][]string{"api": {}}, changes: []event.Change{{ID: "c", Time: onset.Add(tc.offset), Kind: event.ChangeDeploy, Service: "api"}}}
		traffic(f, "api", at.Add(-4*time.Hour), at, 1000, 0.002, onset, 0.05)
		ans, err := New(f, Options{Model: testModel}).WhatChanged(context.Background(), Query{Service: "api", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if !ans.Onset.Equal(onset) || ans.OnsetSource != "detected" {
			t.Fatalf("onset %v (%s), want %v detected", ans.Onset, ans.OnsetSource, onset)
		}
		c := ans.Candidates[0]
		if got := c.Features["after_onset"] == 1; got != tc.after {
			t.Errorf("change at onset%+v: after_onset %v, want %v (features %v)", tc.offset, got, tc.after, c.Features)
		}
	}
}

func TestInteractions(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[string]float64
		want map[string]float64
	}{
		{"timing alone", map[string]float64{"time_fast": 0.8}, map[string]float64{"timing_only": 0.8}},
		{"timing with an effect", map[string]float64{"time_fast": 0.8, "error_shift": 1}, map[string]float64{}},
		{"timing with a weak effect", map[string]float64{"time_fast": 1, "latency_shift": 0.25}, map[string]float64{"timing_only": 0.75}},
		{"late third-party surge", map[string]float64{"own_external": 1, "time_fast": 0.1}, map[string]float64{"external_late": 0.9, "timing_only": 0.1}},
		{"prompt third-party surge", map[string]float64{"own_external": 1, "time_fast": 1, "error_shift": 1}, map[string]float64{}},
	} {
		f := map[string]float64{}
		for k, v := range tc.in {
			f[k] = v
		}
		interactions(f)
		for _, k := range []string{"timing_only", "external_late"} {
			if got, want := f[k], tc.want[k]; math.Abs(got-want) > 1e-9 {
				t.Errorf("%s: %s = %v, want %v", tc.name, k, got, want)
			}
		}
	}
}
