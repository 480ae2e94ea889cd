package chserver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestOpenErrorsNeverShowThePassword: a DSN carries the password, and
// errors end up in logs.
func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	// A port nothing listens on: connect fails fast.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"clickhouse://user:s3cr3t-pass@" + addr + "/db?dial_timeout=1s",
		"clickhouse://user:s3cr3t-pass@" + addr + "/db?dial_timeout=notaduration",
		"clickhouse://user:s3cr3t-pass@%zz/db",
	} {
		_, err := Open(ctx, dsn)
		if err == nil {
			t.Fatalf("open %q succeeded", dsn)
		}
		if strings.Contains(err.Error(), "s3cr3t-pass") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
