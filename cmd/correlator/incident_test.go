package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestIncidentCLI follows one incident through the command line on a
// store holding one deploy: open, update, show, resolve with the deploy as
// the cause, list, and the accuracy report; tables for people, JSON for
// scripts.
func TestIncidentCLI(t *testing.T) {
	dataDir := t.TempDir()
	file := filepath.Join(t.TempDir(), "changes.ndjson")
	change := fmt.Sprintf(`{"id":"chg-api-v42","time":%q,"kind":"deploy","service":"api","version":"v42","previous_version":"v41"}`+"\n",
		time.Now().UTC().Add(-20*time.Minute).Format(time.RFC3339))
	if err := os.WriteFile(file, []byte(change), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "import", file, "--data-dir", dataDir); r.code != 0 {
		t.Fatalf("import exited %d:\n%s", r.code, r.stderr)
	}
	cli := func(args ...string) result {
		t.Helper()
		return runCLI(t, append(args, "--data-dir", dataDir)...)
	}
	ok := func(r result, what string) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s exited %d:\n%s%s", what, r.code, r.stdout, r.stderr)
		}
	}

	r := cli("incident", "open", "--service", "api", "--service", "web", "--at", "-10m", "--title", "checkout 5xx above 5%", "--severity", "P2", "--json")
	ok(r, "open")
	var opened struct {
		ID       string   `json:"id"`
		Status   string   `json:"status"`
		Services []string `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &opened); err != nil {
		t.Fatalf("open --json is not JSON: %v\n%s", err, r.stdout)
	}
	if !regexp.MustCompile(`^inc-\d{8}-\d{4}-[0-9a-f]{4}$`).MatchString(opened.ID) || opened.Status != "open" || strings.Join(opened.Services, ",") != "api,web" {
		t.Fatalf("opened %+v", opened)
	}
	id := opened.ID

	// The ID may come before or after the flags.
	r = cli("incident", "update", id, "--note", "rolled back api to v41")
	ok(r, "update")
	for _, want := range []string{"Incident " + id + ": checkout 5xx above 5%", "rolled back api to v41", "History", "Snapshots: what was known when", "update", "chg-api-v42"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("update table lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cli("incident", "resolve", "--cause", "chg-api-v42", id, "--json")
	ok(r, "resolve")
	if !strings.Contains(r.stdout, `"cause": "chg-api-v42"`) || !strings.Contains(r.stdout, `"status": "resolved"`) {
		t.Errorf("resolve --json:\n%s", r.stdout)
	}

	r = cli("incident", "resolve", id)
	if r.code == 0 || !strings.Contains(r.stderr, "already resolved") || r.stdout != "" {
		t.Errorf("second resolve exited %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}

	r = cli("incident", "show", id, "--json")
	ok(r, "show")
	var shown struct {
		History []struct {
			Status string `json:"status"`
			Note   string `json:"note"`
		} `json:"history"`
		Snapshots []struct {
			Trigger string `json:"trigger"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatal(err)
	}
	if len(shown.History) != 3 || shown.History[1].Note != "rolled back api to v41" || shown.History[2].Status != "resolved" {
		t.Errorf("history %+v", shown.History)
	}
	if len(shown.Snapshots) != 3 || shown.Snapshots[2].Trigger != "resolve" {
		t.Errorf("snapshots %+v", shown.Snapshots)
	}

	r = cli("incident", "list")
	ok(r, "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], id) || !strings.Contains(lines[1], "resolved") || !strings.Contains(lines[1], "chg-api-v42") {
		t.Errorf("list table:\n%s", r.stdout)
	}
	r = cli("incident", "list", "--open", "--json")
	ok(r, "list --open")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list --open --json = %s, want []", r.stdout)
	}

	r = cli("accuracy", "--json")
	ok(r, "accuracy")
	var acc struct {
		Incidents []struct {
			ID    string `json:"id"`
			Cause string `json:"cause"`
		} `json:"incidents"`
		AtOpen struct {
			Judged  int `json:"judged"`
			Changes int `json:"changes"`
		} `json:"at_open"`
		AtResolve struct {
			Changes int `json:"changes"`
		} `json:"at_resolve"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &acc); err != nil {
		t.Fatal(err)
	}
	if len(acc.Incidents) != 1 || acc.Incidents[0].ID != id || acc.AtOpen.Judged != 1 || acc.AtOpen.Changes != 1 || acc.AtResolve.Changes != 1 {
		t.Errorf("accuracy %s", r.stdout)
	}
	r = cli("accuracy", "--since", "7d")
	ok(r, "accuracy table")
	for _, want := range []string{"How the ranking did on 1 resolved incidents", "ranked first (top-1)", "in the first three (top-3)", "abstained (right)", id} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("accuracy table lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestIncidentFlagErrors(t *testing.T) {
	checkFlagErrors(t, []flagErrorCase{
		{[]string{"incident"}, "usage: correlator incident SUBCOMMAND"},
		{[]string{"incident", "close", "inc-1"}, `unknown subcommand "close"`},
		{[]string{"incident", "open", "--title", "t"}, "flag --service: none given"},
		{[]string{"incident", "open", "--service", "api"}, "flag --title: required"},
		{[]string{"incident", "open", "--service", "api", "--title", "t", "--at", "soon"}, `flag --at: cannot parse "soon"`},
		{[]string{"incident", "open", "--service", "api", "--title", "t", "--severity", "very bad"}, `flag --severity: "very bad" is not a severity`},
		{[]string{"incident", "open", "--service", "api", "--title", "t", "extra"}, `unexpected argument "extra"`},
		{[]string{"incident", "update"}, "give the incident id"},
		{[]string{"incident", "update", "inc-404"}, "nothing to change (give --title, --severity, --service, --note or --cause)"},
		{[]string{"incident", "update", "inc-404", "--note", "n"}, `no incident "inc-404"`},
		{[]string{"incident", "resolve", "inc-404", "--cause", "chg-404"}, `flag --cause: no change with id "chg-404"`},
		{[]string{"incident", "show", "inc-404"}, `no incident "inc-404"`},
		{[]string{"incident", "list", "--limit", "5000"}, "flag --limit: 5000 is not between 1 and 1000"},
		{[]string{"accuracy", "--since", "soon"}, `flag --since: cannot parse "soon"`},
	})
}

// TestServeIncidents checks the server's wiring: an Alertmanager group
// opens an incident that the snapshot loop snapshots on open and on
// resolve, and a person's incident is opened through the API.
func TestServeIncidents(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "correlator.yml")
	if err := os.WriteFile(cfgFile, []byte("alertmanager:\n  enabled: true\nincidents:\n  snapshot_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServerArgs(t, []string{"serve", "--config", cfgFile, "--data-dir", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0"})
	notify := func(status string) {
		t.Helper()
		startsAt := time.Now().UTC().Add(-5 * time.Minute).Format(time.RFC3339)
		endsAt := "0001-01-01T00:00:00Z"
		if status == "resolved" {
			endsAt = time.Now().UTC().Format(time.RFC3339)
		}
		body := fmt.Sprintf(`{"receiver":"correlator","status":%q,"alerts":[{"status":%q,"labels":{"alertname":"HighErrorRate","service":"checkout","severity":"page"},`+
			`"annotations":{"summary":"5xx ratio above 5%%"},"startsAt":%q,"endsAt":%q,"fingerprint":"6e890fd1d2e6636f"}],`+
			`"groupLabels":{"alertname":"HighErrorRate"},"commonLabels":{"alertname":"HighErrorRate","service":"checkout","severity":"page"},`+
			`"commonAnnotations":{"summary":"5xx ratio above 5%%"},"externalURL":"http://am","version":"4","groupKey":"{}:{alertname=\"HighErrorRate\"}","truncatedAlerts":0}`,
			status, status, startsAt, endsAt)
		if code := s.call(t, "POST", "/collect/alertmanager", "", body, nil); code != 200 {
			t.Fatalf("alertmanager %s notification: status %d\n%s", status, code, s.logs)
		}
	}
	type detail struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		Snapshots []struct {
			Trigger string `json:"trigger"`
		} `json:"snapshots"`
	}
	// waitSnapshot polls the incident until it has a snapshot of trigger.
	waitSnapshot := func(id, trigger string) detail {
		t.Helper()
		var d detail
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code := s.call(t, "GET", "/api/v1/incidents/"+id, "", "", &d); code != 200 {
				t.Fatalf("GET incident %s: %d", id, code)
			}
			for _, sn := range d.Snapshots {
				if sn.Trigger == trigger {
					return d
				}
			}
		}
		t.Fatalf("incident %s has no %s snapshot after 60 s: %+v\n%s", id, trigger, d, s.logs)
		return d
	}

	notify("firing")
	var list []detail
	if code := s.call(t, "GET", "/api/v1/incidents?status=open", "", "", &list); code != 200 || len(list) != 1 {
		t.Fatalf("open incidents after the alert: %d, %+v", code, list)
	}
	waitSnapshot(list[0].ID, "open")
	notify("resolved")
	if d := waitSnapshot(list[0].ID, "resolve"); d.Status != "resolved" {
		t.Errorf("alert incident after the resolved notification: %+v", d)
	}

	var opened detail
	if code := s.call(t, "POST", "/api/v1/incidents", "", `{"services":["api"],"title":"slow checkout"}`, &opened); code != 200 || opened.ID == "" {
		t.Fatalf("POST /api/v1/incidents: %d, %+v", code, opened)
	}
	waitSnapshot(opened.ID, "open")
	s.stop(t)
}
