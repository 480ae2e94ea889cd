package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/correlator/correlator/internal/event"
)

func TestProbeGzip(t *testing.T) {
	h := newHarness(t, nil)
	z := gzipped(t, records(event.KindErrors, 0, 3, false))
	for name, b := range map[string][]byte{"truncated": z[:len(z)-10], "corrupt crc": append(append([]byte{}, z[:len(z)-8]...), 0, 0, 0, 0, 0, 0, 0, 0)} {
		resp := h.do(t, request{method: http.MethodPost, path: "/api/v1/ingest/errors", body: bytes.NewReader(b), header: map[string]string{"Content-Encoding": "gzip"}})
		t.Logf("%s: %d %s", name, resp.code, resp.body)
	}
	resp := h.do(t, request{method: http.MethodPost, path: "/api/v1/ingest/errors", body: bytes.NewReader(z), header: map[string]string{"Content-Encoding": "br"}})
	t.Logf("br: %d %.300s", resp.code, resp.body)
	t.Log(h.logs.String())
}
