package eval

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
)

func TestZZHash(t *testing.T) {
	h := sha256.New()
	for i, seed := range Dev.Seeds(12) {
		b, truth := GenerateImpact(seed, ImpactSpecFor(seed), ImpactStart(i))
		json.NewEncoder(h).Encode(b)
		json.NewEncoder(h).Encode(truth)
	}
	fmt.Printf("HASH %x\n", h.Sum(nil))
}
