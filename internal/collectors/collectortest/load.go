package collectortest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchSize returns how many items a sustained-ingest benchmark sends: the
// positive integer in the environment variable env when set, else def (or
// short under -short).
func BenchSize(b *testing.B, env string, def, short int) int {
	b.Helper()
	n := def
	if testing.Short() {
		n = short
	}
	if v := os.Getenv(env); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive integer", env, v)
		}
	}
	return n
}

// Sustained is what RunSustained measured.
type Sustained struct {
	// Elapsed runs from the first request to the end of the flush.
	Elapsed time.Duration
	// PeakHeap is the peak HeapInuse meanwhile, in bytes.
	PeakHeap uint64
	// VmHWMKB is the process's VmHWM after the run, in kB (0 where
	// /proc/self/status is unavailable).
	VmHWMKB uint64
	// Failed counts the requests that failed; FirstErr says how the first
	// of them did.
	Failed   int64
	FirstErr string
}

// RunSustained is the timed part of a sustained-ingest benchmark: with b's
// timer running, it sends requests 0 to n-1 with PostConcurrently, then
// calls flush (which must write what the receiver buffered), sampling the
// peak HeapInuse all the while. Call it with b's timer stopped; it returns
// with the timer stopped. A flush error fails b; failed requests do not:
// the caller checks Failed once it has cleaned up.
func RunSustained(b *testing.B, client *http.Client, clients, n int, newRequest func(i int) *http.Request, flush func() error) Sustained {
	b.Helper()
	b.StartTimer()
	sampler := StartMemSampler()
	start := time.Now()
	var s Sustained
	s.Failed, s.FirstErr = PostConcurrently(client, clients, n, newRequest)
	if err := flush(); err != nil {
		b.Fatalf("flush: %v", err)
	}
	s.Elapsed = time.Since(start)
	s.PeakHeap = sampler.Stop()
	b.StopTimer()
	s.VmHWMKB = ProcStatusKB("VmHWM")
	return s
}

// Report reports a run that sent n items as b's metrics, beside the
// ceiling, ceilingN items written in ceilingElapsed: unit (such as
// "records/s"), peak_heap_MB, vmhwm_MB, ceiling_ followed by unit, and
// intake/ceiling. It returns the two rates, in items per second.
func (s Sustained) Report(b *testing.B, unit string, n, ceilingN int, ceilingElapsed time.Duration) (rate, ceiling float64) {
	rate = float64(n) / s.Elapsed.Seconds()
	ceiling = float64(ceilingN) / ceilingElapsed.Seconds()
	b.ReportMetric(rate, unit)
	b.ReportMetric(s.PeakHeapMB(), "peak_heap_MB")
	b.ReportMetric(s.VmHWMMB(), "vmhwm_MB")
	b.ReportMetric(ceiling, "ceiling_"+unit)
	b.ReportMetric(rate/ceiling, "intake/ceiling")
	return rate, ceiling
}

// PeakHeapMB is PeakHeap in MiB.
func (s Sustained) PeakHeapMB() float64 { return float64(s.PeakHeap) / (1 << 20) }

// VmHWMMB is VmHWMKB in MiB.
func (s Sustained) VmHWMMB() float64 { return float64(s.VmHWMKB) / 1024 }

// PostConcurrently sends requests 0 to n-1, made by newRequest, from
// clients goroutines sharing client, each taking the next number until
// all are sent, as concurrent SDKs or exporters do. It returns when every
// answer is read, with the number of requests that failed (an error or a
// status other than 200) and what went wrong with the first of them.
func PostConcurrently(client *http.Client, clients, n int, newRequest func(i int) *http.Request) (failed int64, first string) {
	var next, failures atomic.Int64
	var firstErr atomic.Value // firstErr holds the string of the first failure.
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				resp, err := client.Do(newRequest(i))
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, body))
				}
			}
		})
	}
	wg.Wait()
	first, _ = firstErr.Load().(string)
	return failures.Load(), first
}

// MemSampler samples HeapInuse every 50 ms and keeps the peak, from
// StartMemSampler until Stop.
type MemSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{} // done is closed when the sampling goroutine ends.
}

// StartMemSampler starts sampling; the caller must call Stop.
func StartMemSampler() *MemSampler {
	s := &MemSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > s.peak.Load() {
				s.peak.Store(ms.HeapInuse)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak HeapInuse in bytes.
func (s *MemSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// ProcStatusKB reads a kB field (VmHWM, VmRSS) of /proc/self/status; 0
// when unavailable.
func ProcStatusKB(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
