package collectortest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RequireEnv names the variable that, set to 1, makes a missing
// Prometheus or Alertmanager binary fail the tests that need it instead of
// skipping them (CI sets it after installing the Debian packages).
const RequireEnv = "CORRELATOR_REQUIRE_PROMETHEUS"

// RequireBinary returns the path of an installed binary (on $PATH or in
// /usr/bin), or skips the test; it fails it when RequireEnv is 1.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := filepath.Join("/usr/bin", name); fileExists(p) {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (apt-get install -y prometheus prometheus-alertmanager); "+
		"set %s=1 to make this a failure", name, RequireEnv)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// StartProcess runs a server binary in dir until the test ends (it is
// killed and waited for in t's cleanup), with its output in dir/output.log,
// whose tail is logged when the test fails.
func StartProcess(t testing.TB, dir, bin string, args ...string) {
	t.Helper()
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(out.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s output (tail):\n%s", filepath.Base(bin), b)
		}
	})
}

// WaitHTTP polls url until it answers 200, failing t when it has not
// within the given time.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %s (last error %v)", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
