package logpattern

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// generator renders log lines from weighted formats with random values,
// deterministically for a seed.
type generator struct {
	formats []string
	cum     []int // cumulative weights
	rng     *rand.Rand
}

// newGenerator reads testdata/background.formats.
func newGenerator(t testing.TB, seed uint64) *generator {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "background.formats"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &generator{rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w, format, ok := strings.Cut(line, "\t")
		weight, err := strconv.Atoi(w)
		if !ok || err != nil {
			t.Fatalf("background.formats: bad line %q", line)
		}
		total := weight
		if n := len(g.cum); n > 0 {
			total += g.cum[n-1]
		}
		g.formats = append(g.formats, format)
		g.cum = append(g.cum, total)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// lines returns n lines drawn from the formats by weight.
func (g *generator) lines(n int) []string {
	out := make([]string, n)
	for i := range out {
		r := g.rng.IntN(g.cum[len(g.cum)-1])
		k := 0
		for g.cum[k] <= r {
			k++
		}
		out[i] = g.render(g.formats[k])
	}
	return out
}

var users = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}

// render fills the placeholders of format.
func (g *generator) render(format string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			b.WriteString(format)
			return b.String()
		}
		j := strings.IndexByte(format[i:], '}') + i
		b.WriteString(format[:i])
		b.WriteString(g.value(format[i+1 : j]))
		format = format[j+1:]
	}
}

func (g *generator) value(name string) string {
	r := g.rng
	at := time.Date(2026, 3, 12, 10, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(3600_000)) * time.Millisecond)
	switch name {
	case "n":
		return strconv.Itoa(1 + r.IntN(99999))
	case "small":
		return strconv.Itoa(r.IntN(16))
	case "ms":
		if r.IntN(4) == 0 {
			return fmt.Sprintf("%.3fs", 1+r.Float64()*4)
		}
		return fmt.Sprintf("%dms", r.IntN(1000))
	case "money":
		return fmt.Sprintf("%d.%02d", r.IntN(500), r.IntN(100))
	case "ip":
		return fmt.Sprintf("10.42.%d.%d", r.IntN(8), 1+r.IntN(254))
	case "port":
		return strconv.Itoa(32768 + r.IntN(28000))
	case "uuid":
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), 0x8000|r.IntN(1<<14), r.Int64N(1<<48))
	case "pod":
		const alphabet = "bcdfghjklmnpqrstvwxz2456789"
		suffix := make([]byte, 5)
		for i := range suffix {
			suffix[i] = alphabet[r.IntN(len(alphabet))]
		}
		return "checkout-7f9c8d7b5-" + string(suffix)
	case "user":
		return users[r.IntN(len(users))]
	case "ts":
		return at.Format("2006-01-02T15:04:05.000Z")
	case "clf":
		return at.Format("02/Jan/2006:15:04:05")
	case "date":
		return at.Format("2006/01/02")
	case "time":
		return at.Format("15:04:05")
	}
	panic("background.formats: unknown placeholder {" + name + "}")
}
