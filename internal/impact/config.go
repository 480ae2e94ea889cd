package impact

import (
	"errors"
	"fmt"
	"time"
)

// Config configures impact estimates: the YAML section "impact".
type Config struct {
	// LatencyThreshold counts a request log slower than it (attribute
	// duration_ms, or http.server.request.duration in seconds) as a
	// failure. 0 (the default) counts only errors and failed requests.
	LatencyThreshold time.Duration `yaml:"latency_threshold" json:"latency_threshold"`
	// Baseline chooses the windows whose failures are "anyway".
	Baseline Baseline `yaml:"baseline" json:"baseline"`
	// Severity lists the severity levels, most severe first; the first
	// whose thresholds an incident meets is suggested. Default P1–P4.
	Severity []SeverityLevel `yaml:"severity" json:"severity"`
	// Level is the coverage of the intervals, in (0, 1). Default 0.9.
	Level float64 `yaml:"level" json:"level"`
}

// Baseline chooses the baseline windows, each as long as the question's.
type Baseline struct {
	// BeforeOnset uses the window that ends where the question's (the
	// incident's) starts.
	BeforeOnset bool `yaml:"before_onset" json:"before_onset"`
	// WeeksBack uses the same weekday and hours 1..WeeksBack weeks earlier
	// (0 turns them off, at most 8).
	WeeksBack int `yaml:"weeks_back" json:"weeks_back"`
}

// SeverityLevel is one level of the severity scale. An incident meets it
// when it lasted at least MinDuration and its excess affected users are
// at least MinShare of the active users or at least MinUsers (a zero
// threshold is not used; with both zero, the duration alone decides).
type SeverityLevel struct {
	Name        string        `yaml:"name" json:"name"`
	MinShare    float64       `yaml:"min_share" json:"min_share"`
	MinUsers    float64       `yaml:"min_users" json:"min_users"`
	MinDuration time.Duration `yaml:"min_duration" json:"min_duration"`
}

// DefaultConfig is the configuration without a YAML section: both
// baselines, P1 to P4.
func DefaultConfig() Config {
	return Config{
		Baseline: Baseline{BeforeOnset: true, WeeksBack: 1},
		Severity: []SeverityLevel{
			{Name: "P1", MinShare: 0.20, MinUsers: 10000, MinDuration: 10 * time.Minute},
			{Name: "P2", MinShare: 0.05, MinUsers: 1000, MinDuration: 5 * time.Minute},
			{Name: "P3", MinShare: 0.01, MinUsers: 100},
			{Name: "P4"},
		},
		Level: 0.9,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Severity == nil {
		c.Severity = d.Severity
	}
	if c.Level == 0 {
		c.Level = d.Level
	}
	return c
}

// Validate names every field at fault.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("impact.%s: %s", field, fmt.Sprintf(format, a...)))
	}
	if c.LatencyThreshold < 0 {
		add("latency_threshold", "negative (%s)", c.LatencyThreshold)
	}
	if c.Baseline.WeeksBack < 0 || c.Baseline.WeeksBack > 8 {
		add("baseline.weeks_back", "%d is outside 0..8", c.Baseline.WeeksBack)
	}
	if c.Level != 0 && (c.Level <= 0 || c.Level >= 1) {
		add("level", "%v is outside (0, 1)", c.Level)
	}
	seen := map[string]bool{}
	for i, s := range c.Severity {
		f := fmt.Sprintf("severity[%d]", i)
		switch {
		case s.Name == "":
			add(f+".name", "empty")
		case seen[s.Name]:
			add(f+".name", "%q appears twice", s.Name)
		}
		seen[s.Name] = true
		if s.MinShare < 0 || s.MinShare > 1 {
			add(f+".min_share", "%v is outside [0, 1]", s.MinShare)
		}
		if s.MinUsers < 0 {
			add(f+".min_users", "negative (%v)", s.MinUsers)
		}
		if s.MinDuration < 0 {
			add(f+".min_duration", "negative (%s)", s.MinDuration)
		}
	}
	return errors.Join(errs...)
}

// baselines are the baseline windows of [from, to). A window that would
// overlap the question's or one already chosen is left out (a question
// longer than half a week overlaps the window a week back before it): a
// failure must count in one window only.
func (c Config) baselines(from, to time.Time) []Span {
	d := to.Sub(from)
	var cands []Span
	if c.Baseline.BeforeOnset {
		cands = append(cands, Span{From: from.Add(-d), To: from})
	}
	for w := 1; w <= c.Baseline.WeeksBack; w++ {
		back := time.Duration(w) * 7 * 24 * time.Hour
		cands = append(cands, Span{From: from.Add(-back), To: to.Add(-back)})
	}
	taken := []Span{{From: from, To: to}}
	var out []Span
	for _, s := range cands {
		overlaps := false
		for _, t := range taken {
			if s.From.Before(t.To) && t.From.Before(s.To) {
				overlaps = true
			}
		}
		if !overlaps {
			out = append(out, s)
			taken = append(taken, s)
		}
	}
	return out
}

// severity suggests a level for an incident of the given share and
// excess users that lasted d; "none" when nobody was affected beyond the
// baseline.
func (c Config) severity(share, users float64, d time.Duration) string {
	if users < 0.5 {
		return "none"
	}
	for _, s := range c.Severity {
		if d < s.MinDuration {
			continue
		}
		if (s.MinShare == 0 && s.MinUsers == 0) ||
			(s.MinShare > 0 && share >= s.MinShare) ||
			(s.MinUsers > 0 && users >= s.MinUsers) {
			return s.Name
		}
	}
	return "none"
}
