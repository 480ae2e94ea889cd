package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Each phase of generation draws from its own PCG stream of the seed, so a
// change to how one phase uses randomness does not reshuffle the others:
// adding a background flag flip must not move the incident.
const (
	streamTopology uint64 = iota + 1
	streamIncident
	streamChanges
	streamVersions
	streamTraffic
	streamBulk
	streamOptions
)

// newRand returns the deterministic stream of seed named by stream.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// uniform returns a float in [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 {
	return lo + (hi-lo)*r.Float64()
}

// logUniform returns a float in [lo, hi) whose logarithm is uniform, for
// quantities that span orders of magnitude.
func logUniform(r *rand.Rand, lo, hi float64) float64 {
	return math.Exp(uniform(r, math.Log(lo), math.Log(hi)))
}

// between returns a duration in [lo, hi).
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// pick returns a uniformly chosen element of xs, which must not be empty.
func pick[T any](r *rand.Rand, xs []T) T {
	return xs[r.IntN(len(xs))]
}

// Poisson draws from a Poisson distribution of mean lambda: exactly for small
// means, by the normal approximation above 30 where it is close enough for
// request counts and far cheaper.
func Poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda < 30 {
		limit := math.Exp(-lambda)
		k, p := 0, r.Float64()
		for p > limit {
			p *= r.Float64()
			k++
		}
		return k
	}
	n := math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64())
	if n < 0 {
		return 0
	}
	return int(n)
}

const hexDigits = "0123456789abcdef"

// HexID returns n (at most 32) random lowercase hex digits, the shape of
// Sentry event ids (32), trace ids (32), span ids (16) and commit prefixes.
func HexID(r *rand.Rand, n int) string {
	var b [32]byte
	for i := 0; i < n; i += 16 {
		v := r.Uint64()
		for j := i; j < i+16 && j < n; j++ {
			b[j] = hexDigits[v&15]
			v >>= 4
		}
	}
	return string(b[:n])
}

// hash64 returns a 64-bit hash of s.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// contentHash returns n hex digits of the SHA-256 of parts, so that ids of
// changes and fingerprints follow from their content.
func contentHash(n int, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:n]
}
