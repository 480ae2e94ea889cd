package impact

import (
	"math"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/store"
)

func TestSeverity(t *testing.T) {
	c := DefaultConfig()
	cases := []struct {
		share, users float64
		d            time.Duration
		want         string
	}{
		{0.3, 50, time.Hour, "P1"},
		{0.3, 50, 6 * time.Minute, "P2"},       // too short for P1
		{0.001, 20000, 15 * time.Minute, "P1"}, // many users, small share
		{0.02, 150, time.Minute, "P3"},
		{0.002, 3, time.Hour, "P4"},
		{0, 0, time.Hour, "none"},
	}
	for _, tc := range cases {
		if got := c.severity(tc.share, tc.users, tc.d); got != tc.want {
			t.Errorf("severity(share %v, users %v, %s) = %s, want %s", tc.share, tc.users, tc.d, got, tc.want)
		}
	}
}

func TestEffectiveRates(t *testing.T) {
	row := func(svc string, e store.Entity, rate float64, errs, logs, both uint64) store.FreqRow {
		return store.FreqRow{Entity: e, Service: svc, Rate: rate, Seen: 1, Entities: 1, Errors: errs, Logs: logs, Both: both}
	}
	rows := []store.FreqRow{
		// At 0.1 both sources keep a tenth of the failures, independently.
		row("", store.Users, 0.1, 60, 50, 5), row("", store.Users, 0.1, 40, 50, 5),
		// Rows that must not count: a service's, the customers', rate 1.
		row("api", store.Users, 0.1, 1000, 0, 0), row("", store.Customers, 0.1, 1000, 1000, 1000),
		row("", store.Users, 1, 10, 10, 10),
		// At 0.25 only error events: their rate stands.
		row("", store.Users, 0.25, 80, 0, 0),
	}
	eff := effectiveRates(rows, 0)
	// pe = pl = (10 + 20·0.1)/(100 + 20) = 0.1: seen with 1 − 0.9².
	if got := eff[0.1]; math.Abs(got-0.19) > 1e-9 {
		t.Errorf("effective rate at 0.1 = %v, want 0.19", got)
	}
	if _, ok := eff[0.25]; ok || len(eff) != 1 {
		t.Errorf("effective rates %v, want only 0.1's", eff)
	}
	if got := effectiveRates(rows, 1); len(got) != 0 {
		t.Errorf("another window's rates: %v", got)
	}
}

func TestBaselinesNeverOverlap(t *testing.T) {
	from := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	c := DefaultConfig()
	// An hour: the hour before and the same hour a week back.
	if got := c.baselines(from, from.Add(time.Hour)); len(got) != 2 || !got[0].To.Equal(from) || !got[1].From.Equal(from.Add(-7*24*time.Hour)) {
		t.Errorf("1h: %+v", got)
	}
	// Five days: the week-back window would overlap the five days before.
	if got := c.baselines(from, from.Add(5*24*time.Hour)); len(got) != 1 || !got[0].To.Equal(from) {
		t.Errorf("5 days: %+v, want only the window before", got)
	}
	// Without the window before, a week back stays.
	c.Baseline.BeforeOnset = false
	if got := c.baselines(from, from.Add(5*24*time.Hour)); len(got) != 1 || !got[0].To.Equal(from.Add(-2*24*time.Hour)) {
		t.Errorf("5 days, week back only: %+v", got)
	}
}
