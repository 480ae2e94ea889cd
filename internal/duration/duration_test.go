package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationRoundTrips(t *testing.T) {
	var v struct {
		D Duration `yaml:"d" json:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 90s\n"), &v); err != nil || time.Duration(v.D) != 90*time.Second {
		t.Fatalf("yaml 90s: %v, %v", v.D, err)
	}
	out, _ := yaml.Marshal(v)
	if string(out) != "d: 1m30s\n" {
		t.Errorf("yaml out %q", out)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"d":"1m30s"}` {
		t.Errorf("json out %s", b)
	}
	if err := json.Unmarshal([]byte(`{"d":"2h"}`), &v); err != nil || time.Duration(v.D) != 2*time.Hour {
		t.Errorf("json 2h: %v, %v", v.D, err)
	}
	for _, bad := range []string{"d: soon\n", "d: 5\n", "d: [1s]\n"} {
		err := yaml.Unmarshal([]byte(bad), &v)
		if err == nil || !strings.Contains(err.Error(), "line 1: invalid duration") {
			t.Errorf("yaml %q: %v, want the line and what is wrong", bad, err)
		}
	}
	if err := json.Unmarshal([]byte(`{"d":"5"}`), &v); err == nil {
		t.Error("json 5: accepted")
	}
}
