package scenario

import (
	"fmt"
	"testing"
)

func TestDump(t *testing.T) {
	s := generate(t, Options{Seed: 2, Start: testStart, Family: BadDeployDependency})
	if err := s.WriteNDJSON("/tmp/scen2"); err != nil {
		t.Fatal(err)
	}
	fmt.Println(s.Description)
	fmt.Println(s.Service, s.CauseService, s.Onset, s.Detected, s.Fingerprint)
	for k, v := range s.Topology {
		fmt.Println(k, v)
	}
}
