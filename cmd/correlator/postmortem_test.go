package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
		{"unknown incident, flags around it", []string{"postmortem", "--data-dir", dataDir, "inc-none", "--format", "html"}, 1, `unknown incident "inc-none"`},
		{"two incidents", []string{"postmortem", "--data-dir", dataDir, "inc-1", "--format", "html", "inc-2"}, 1, `unexpected argument "inc-2"`},
		{"bad grafana url", []string{"postmortem", "inc-1", "--data-dir", dataDir, "--grafana-url", "grafana"}, 1, "flag --grafana-url: want an http(s) URL"},
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

// The Grafana links of the bundle come from grafana.url of the
// configuration, --grafana-url overrides it, and flags may follow the
// incident id.
func TestPostmortemCommandGrafanaAndFlagOrder(t *testing.T) {
	dataDir := t.TempDir()
	r := runCLI(t, "incident", "open", "--data-dir", dataDir, "--service", "api", "--title", "checkout 5xx", "--json")
	if r.code != 0 {
		t.Fatalf("open exited %d:\n%s", r.code, r.stderr)
	}
	var opened struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &opened); err != nil || opened.ID == "" {
		t.Fatalf("open --json: %v\n%s", err, r.stdout)
	}
	conf := filepath.Join(t.TempDir(), "correlator.yaml")
	if err := os.WriteFile(conf, []byte("grafana:\n  url: https://grafana.from-config.example\n  token: glsa_test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		want, none []string
	}{
		{"configured grafana, flags around the id", []string{"postmortem", "--config", conf, opened.ID, "--data-dir", dataDir, "--format", "html"},
			[]string{"<!DOCTYPE html>", "https://grafana.from-config.example/d/correlator-incident?"}, nil},
		{"--grafana-url overrides", []string{"postmortem", "--data-dir", dataDir, opened.ID, "--grafana-url", "https://grafana.flag.example", "--config", conf},
			[]string{"# Post-mortem: ", "https://grafana.flag.example/d/correlator-incident?"}, []string{"grafana.from-config.example"}},
		{"no grafana, no links", []string{"postmortem", opened.ID, "--data-dir", dataDir},
			[]string{"# Post-mortem: "}, []string{"/d/correlator-incident"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.stderr)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("output lacks %q:\n%.1500s", s, r.stdout)
				}
			}
			for _, s := range tt.none {
				if strings.Contains(r.stdout, s) {
					t.Errorf("output has %q", s)
				}
			}
		})
	}
	// The variable the command used to read is gone: only the
	// configuration and the flag count.
	cmd := exec.Command(binary, "postmortem", opened.ID, "--data-dir", dataDir)
	cmd.Env = env("CORRELATOR_GRAFANA_URL=https://grafana.env.example")
	out, err := cmd.Output()
	if err != nil || strings.Contains(string(out), "grafana.env.example") {
		t.Errorf("with $CORRELATOR_GRAFANA_URL: %v; links to it: %v", err, strings.Contains(string(out), "grafana.env.example"))
	}
}
