package config

import (
	"strings"
	"testing"
	"time"
)

func TestIncidentsSnapshotInterval(t *testing.T) {
	isolateDefaults(t)
	tests := []struct {
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{"", 5 * time.Minute, ""},
		{"incidents:\n", 5 * time.Minute, ""},
		{"incidents:\n  snapshot_interval: 90s\n", 90 * time.Second, ""},
		{"incidents:\n  snapshot_interval: 10s\n", 10 * time.Second, ""},
		{"incidents:\n  snapshot_interval: 2s\n", 0, "incidents.snapshot_interval: must be at least 10s, got 2s"},
		{"incidents:\n  snapshot_interval: -1m\n", 0, "incidents.snapshot_interval: must be at least 10s, got -1m0s"},
		{"incidents:\n  snapshot_intervall: 1m\n", 0, "field snapshot_intervall not found in type config.Incidents"},
	}
	for _, tt := range tests {
		c := Default()
		err := decodeStrict([]byte(tt.yaml), &c)
		if err == nil {
			err = c.Validate()
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.yaml, err)
			continue
		}
		if got := c.Incidents.EffectiveSnapshotInterval(); got != tt.want {
			t.Errorf("%q: interval %s, want %s", tt.yaml, got, tt.want)
		}
	}
}
