package otlplogs

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/correlator/correlator/internal/ingest"
	"google.golang.org/protobuf/proto"
)

// The fuzz targets post arbitrary bodies through the whole handler (body
// reading, decoding, mapping) and check that it never panics, answers 200
// or 400 only, and that every record it accepts is one the store can take.

func FuzzReceiveJSON(f *testing.F) {
	seedFiles(f, "*.json")
	for _, s := range []string{"", "{}", "null", `{"resourceLogs":[{}]}`,
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1767225600000000000","traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"AAAAAAAAAAAAAAAA"}]}]}]}`,
		`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"observedTimeUnixNano":1767225600000000000,"severityNumber":99,"body":{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{}]}}}]}}}]}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkReceive(t, body, encJSON) })
}

func FuzzReceiveProtobuf(f *testing.F) {
	seedFiles(f, "*.pb")
	if b, err := proto.Marshal(exampleProto()); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) { checkReceive(t, body, encProto) })
}

func seedFiles(f *testing.F, glob string) {
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkReceive(t *testing.T, body []byte, enc encoding) {
	var w collect
	rc, _ := newReceiver(t, Config{MaxBodyBytes: 1 << 20}, &w)
	rec := post(rc, enc.contentType(), "", body)
	switch rec.Code {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		if len(w.records()) != 0 {
			t.Fatalf("status %d but %d records written", rec.Code, len(w.records()))
		}
		return
	default:
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	req, err := decodeRequest(body, enc)
	if err != nil {
		t.Fatalf("answered 200 to a body that does not decode: %v", err)
	}
	total := 0
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			total += len(sl.GetLogRecords())
		}
	}
	resp := responseJSON(t, rec).(map[string]any)
	rejected := 0
	if ps, ok := resp["partialSuccess"].(map[string]any); ok {
		n, err := strconv.Atoi(fmt.Sprint(ps["rejectedLogRecords"]))
		if err != nil {
			t.Fatalf("rejectedLogRecords %v: %v", ps["rejectedLogRecords"], err)
		}
		rejected = n
	}
	logs := w.records()
	if len(logs)+rejected != total {
		t.Fatalf("%d accepted + %d rejected != %d records sent", len(logs), rejected, total)
	}
	for i, l := range logs {
		switch {
		case l.Service == "" || len(l.Service) > maxIdent:
			t.Fatalf("record %d: service %q", i, l.Service)
		case l.Time.Before(minTime) || l.Time.After(testNow.Add(maxFuture)):
			t.Fatalf("record %d: time %v out of range", i, l.Time)
		case len(l.Body) > maxText:
			t.Fatalf("record %d: body of %d bytes", i, len(l.Body))
		case !isHex(l.TraceID, 32) || !isHex(l.SpanID, 16):
			t.Fatalf("record %d: ids %q %q", i, l.TraceID, l.SpanID)
		case len(l.ID) != 32:
			t.Fatalf("record %d: id %q", i, l.ID)
		}
		if s, ok := ingest.NormalizeSeverity(l.Severity); !ok || s != l.Severity {
			t.Fatalf("record %d: severity %q is not canonical", i, l.Severity)
		}
	}
	if enc == encJSON && !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("response is not JSON: %s", rec.Body)
	}
}

func isHex(s string, n int) bool {
	if s == "" {
		return true
	}
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && s == hexLower(s)
}

func hexLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
