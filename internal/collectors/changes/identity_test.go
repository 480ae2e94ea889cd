package changes

import (
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.4.2":           "1.4.2",
		"V1.4.2":           "1.4.2",
		"1.4.2":            "1.4.2",
		"refs/tags/v1.4.2": "1.4.2",
		" v2 ":             "2",
		"version-2":        "version-2",
		"main":             "main",
		"a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d": "a84d88e",
		"A84D88E7554FC1FA21BCBC4EFAE3C782A70D2B9D": "a84d88e",
		"a84d88e":  "a84d88e",
		"20241121": "20241121", // a build number, not a commit
		"1234567890123456789012345678901234567890": "1234567", // 40 digits: a commit
		"":  "",
		"v": "v",
	} {
		if got := NormalizeVersion(in); got != want {
			t.Errorf("NormalizeVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsCommit(t *testing.T) {
	for in, want := range map[string]bool{
		"a84d88e": true, "A84D88E": true, "a84d88": false, "1234567": false, "deadbeefcafe": true,
		"a84d88e7554fc1fa21bcbc4efae3c782a70d2b9d": true, "g84d88e": false, "v1.2.3": false,
	} {
		if got := IsCommit(in); got != want {
			t.Errorf("IsCommit(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestIdentityAgreesAcrossSpellings(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	base := event.Change{Time: at, Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: "v1.4.2"}
	want := IdentityID(&base)
	if want == "" || len(want) != 32 {
		t.Fatalf("IdentityID = %q, want 32 hex digits", want)
	}
	same := []event.Change{
		{Time: at.Add(time.Hour), Kind: event.ChangeRollback, Service: "API", Environment: "Production", Version: "1.4.2"},
		{Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: "refs/tags/v1.4.2", Commit: "abc1234", Source: "x"},
	}
	for _, c := range same {
		if got := IdentityID(&c); got != want {
			t.Errorf("IdentityID(%+v) = %s, want %s", c, got, want)
		}
	}
	different := []event.Change{
		{Kind: event.ChangeDeploy, Service: "api", Environment: "staging", Version: "v1.4.2"},
		{Kind: event.ChangeDeploy, Service: "web", Environment: "production", Version: "v1.4.2"},
		{Kind: event.ChangeDeploy, Service: "api", Environment: "production", Version: "v1.4.3"},
		{Kind: event.ChangeConfig, Service: "api", Environment: "production", Version: "v1.4.2"},
		{Kind: event.ChangeDeploy, Service: "api", Version: "v1.4.2"},
	}
	for _, c := range different {
		if got := IdentityID(&c); got == want || got == "" {
			t.Errorf("IdentityID(%+v) = %q, want another id", c, got)
		}
	}
	// A commit alone identifies; its short and full forms agree.
	full := event.Change{Kind: event.ChangeDeploy, Service: "api", Commit: "A84D88E7554FC1FA21BCBC4EFAE3C782A70D2B9D"}
	short := event.Change{Kind: event.ChangeDeploy, Service: "api", Version: "a84d88e"}
	if IdentityID(&full) != IdentityID(&short) {
		t.Error("a full and a short commit hash have different identities")
	}
	for _, c := range []event.Change{
		{Kind: event.ChangeFlag, Service: "api", Version: "1"},
		{Kind: event.ChangeDeploy, Service: "api"},
		{Kind: event.ChangeDeploy, Version: "1"},
	} {
		if id := IdentityID(&c); id != "" {
			t.Errorf("IdentityID(%+v) = %s, want none", c, id)
		}
	}
}

func TestHashIDIsInjective(t *testing.T) {
	if HashID("ab", "c") == HashID("a", "bc") {
		t.Error("HashID does not separate its parts")
	}
}

func TestFlagState(t *testing.T) {
	for in, want := range map[string]string{
		"on": "on", "TRUE": "on", "enabled": "on", "off": "off", "false": "off", "0": "off", "0%": "off",
		"100": "on", "10": "10%", "10%": "10%", " 12.5 % ": "12.5%", "33.3333": "33.333%",
	} {
		got, err := FlagState(in)
		if err != nil || got != want {
			t.Errorf("FlagState(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "half", "101", "-1", "NaN"} {
		if got, err := FlagState(in); err == nil {
			t.Errorf("FlagState(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          now,
		"now":                       now,
		"-5m":                       now.Add(-5 * time.Minute),
		"2026-11-21T09:00:00+01:00": now.Add(-2 * time.Hour),
		"1795000000":                time.Unix(1795000000, 0).UTC(),
		"1795000000123":             time.UnixMilli(1795000000123).UTC(),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-5x", "2026-11-21"} {
		if _, err := ParseTime(in, now); err == nil {
			t.Errorf("ParseTime(%q): want an error", in)
		}
	}
}
