package impact

import (
	"testing"
	"time"
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
