package eval

import (
	"testing"
	"time"

	"github.com/correlator/correlator/internal/scenario"
)

func TestSeeds(t *testing.T) {
	dev, test := Dev.Seeds(3), Test.Seeds(3)
	if dev[0] != 1 || dev[2] != 3 || test[0] != 100001 || test[2] != 100003 {
		t.Errorf("dev %v test %v", dev, test)
	}
}

func TestScenarioOptions(t *testing.T) {
	seen := map[int]bool{}
	for seed := uint64(1); seed <= 10; seed++ {
		o := ScenarioOptions(scenario.BadDeploy, seed)
		if o.Services < 6 || o.Services > 10 || o.Days != 1 || o.Start.IsZero() {
			t.Errorf("seed %d: %+v", seed, o)
		}
		seen[o.Services] = true
	}
	if len(seen) != 5 {
		t.Errorf("services over 10 seeds: %v, want all of 6..10", seen)
	}
}

func TestLookbackFor(t *testing.T) {
	for _, tt := range []struct {
		family scenario.Family
		want   time.Duration
	}{
		{scenario.BadDeploy, 2 * time.Hour},
		{"slow-regression", 8 * time.Hour},
		{"slow-memory-leak", 8 * time.Hour},
	} {
		if got := LookbackFor(tt.family); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.family, got, tt.want)
		}
	}
	if s := formatLookback(2 * time.Hour); s != "2h" {
		t.Errorf("formatLookback(2h) = %q", s)
	}
	if s := formatLookback(90 * time.Minute); s != "90m" {
		t.Errorf("formatLookback(90m) = %q", s)
	}
}

func TestParseFamilies(t *testing.T) {
	all, err := ParseFamilies("")
	if err != nil || len(all) != len(scenario.Families) {
		t.Errorf("all: %v %v", all, err)
	}
	one, err := ParseFamilies(" bad-deploy ,bad-deploy")
	if err != nil || len(one) != 1 || one[0] != scenario.BadDeploy {
		t.Errorf("one: %v %v", one, err)
	}
	if _, err := ParseFamilies("bad-deploy,nope"); err == nil {
		t.Error("unknown family accepted")
	}
	if _, err := ParseFamilies(","); err == nil {
		t.Error("empty list accepted")
	}
}
