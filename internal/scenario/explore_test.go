package scenario

import (
	"fmt"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	start := time.Date(2025, 3, 10, 7, 0, 0, 0, time.UTC)
	var maxE, maxL int
	var maxD, sum time.Duration
	fams := map[string]int{}
	for seed := uint64(1); seed <= 150; seed++ {
		for _, f := range Families {
			t0 := time.Now()
			s, err := Generate(Options{Seed: seed, Start: start.Add(time.Duration(seed%24) * time.Hour), Family: f})
			if err != nil {
				t.Fatal(err)
			}
			d := time.Since(t0)
			sum += d
			if f == BadDeployDependency {
				fams[s.Service+"<-"+s.CauseService]++
			}
			if len(s.Batch.Errors) > maxE {
				maxE = len(s.Batch.Errors)
				fmt.Println("maxE", seed, f, maxE, len(s.Batch.Logs), s.Description)
			}
			maxL = max(maxL, len(s.Batch.Logs))
			maxD = max(maxD, d)
		}
	}
	fmt.Println(maxE, maxL, maxD, sum/300)
	fmt.Println(fams)
}
