package main

import (
	"strings"
	"testing"
)

// The postmortem command's argument errors and its unknown-incident error
// name what is wrong, in the process as a user runs it.
func TestPostmortemCommandErrors(t *testing.T) {
	dataDir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no incident", []string{"postmortem", "--data-dir", dataDir}, 1, "missing INCIDENT"},
		{"bad format", []string{"postmortem", "inc-1", "--format", "pdf", "--data-dir", dataDir}, 1, `flag --format: unknown format "pdf"`},
		{"stray argument", []string{"postmortem", "inc-1", "--data-dir", dataDir, "extra"}, 1, `unexpected argument "extra"`},
		{"unknown incident, flags first", []string{"postmortem", "--data-dir", dataDir, "--format", "html", "inc-none"}, 1, `unknown incident "inc-none"`},
		{"help", []string{"postmortem", "-h"}, 0, "Usage: correlator postmortem INCIDENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
}
