package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/correlator/correlator/internal/event"
)

func TestWriteNDJSON(t *testing.T) {
	t.Parallel()
	s := generate(t, Options{Seed: 9, Start: testStart.Add(17*time.Second + 250*time.Millisecond), Days: 1, Services: 4, ErrorSampleRate: 0.5})
	dir := filepath.Join(t.TempDir(), "demo")
	if err := s.WriteNDJSON(dir); err != nil {
		t.Fatal(err)
	}
	b := &s.Batch
	checkNDJSON(t, dir, event.KindChanges, b.Changes)
	checkNDJSON(t, dir, event.KindErrors, b.Errors)
	checkNDJSON(t, dir, event.KindLogs, b.Logs)
	checkNDJSON(t, dir, event.KindMetrics, b.Metrics)
	checkNDJSON(t, dir, event.KindServices, b.Services)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(event.Kinds) {
		t.Errorf("%d files written, want %d", len(entries), len(event.Kinds))
	}
}

var msTime = regexp.MustCompile(`^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$`)

// checkNDJSON reads kind's file in dir and checks it holds want, one object a
// line, with times in RFC 3339 UTC with milliseconds.
func checkNDJSON[T any](t *testing.T, dir string, kind event.Kind, want []T) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, string(kind)+".ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for ; sc.Scan(); n++ {
		line := sc.Bytes()
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(line, &fields); err != nil {
			t.Fatalf("%s line %d: %v", kind, n+1, err)
		}
		if !msTime.Match(fields["time"]) {
			t.Fatalf("%s line %d: time %s is not RFC 3339 UTC with milliseconds", kind, n+1, fields["time"])
		}
		if n >= len(want) {
			continue
		}
		var got T
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%s line %d: %v", kind, n+1, err)
		}
		exp := want[n]
		truncateTime(&exp)
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("%s line %d decodes to\n%+v\nwant\n%+v", kind, n+1, got, exp)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("%s: %d lines, want %d", kind, n, len(want))
	}
}

// truncateTime truncates the Time field of the record p points to to
// milliseconds, the precision of the files.
func truncateTime(p any) {
	v := reflect.ValueOf(p).Elem().FieldByName("Time")
	v.Set(reflect.ValueOf(v.Interface().(time.Time).Truncate(time.Millisecond)))
}
