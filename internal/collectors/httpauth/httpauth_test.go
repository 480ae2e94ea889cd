package httpauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "s", s, "c", Credentials{BearerToken: s})
	j, _ := json.Marshal(Credentials{BearerToken: s, BasicAuth: &BasicAuth{Username: "u", Password: s}})
	y, _ := yaml.Marshal(Credentials{BearerToken: s})
	outs := []string{fmt.Sprint(s), fmt.Sprintf("%s %v %q %x %#v %+v", s, s, s, s, s, Credentials{BearerToken: s}), buf.String(), string(j), string(y)}
	for _, o := range outs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, "68756e74657232") {
			t.Errorf("secret shown: %s", o)
		}
	}
	if s.Reveal() != "hunter2" || Secret("").String() != "" {
		t.Error("Reveal or the empty secret is wrong")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	tokFile := writeFile(t, " filetok\n")
	pwFile := writeFile(t, "pw\n")
	bearer := Credentials{BearerToken: "tok"}
	tests := []struct {
		name string
		c    Credentials
		set  func(r *http.Request)
		want error
	}{
		{"none demanded", Credentials{}, nil, nil},
		{"bearer ok", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, nil},
		{"bearer scheme case", bearer, func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") }, nil},
		{"bearer missing", bearer, nil, ErrMissing},
		{"bearer wrong", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer to") }, ErrInvalid},
		{"bearer prefix of token", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tokk") }, ErrInvalid},
		{"bearer empty", bearer, func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") }, ErrInvalid},
		{"bearer as basic", bearer, func(r *http.Request) { r.SetBasicAuth("tok", "tok") }, ErrInvalid},
		{"bearer from file", Credentials{BearerTokenFile: tokFile}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer filetok") }, nil},
		{"basic ok", Credentials{BasicAuth: &BasicAuth{Username: "u", PasswordFile: pwFile}}, func(r *http.Request) { r.SetBasicAuth("u", "pw") }, nil},
		{"basic wrong user", Credentials{BasicAuth: &BasicAuth{Username: "u", Password: "pw"}}, func(r *http.Request) { r.SetBasicAuth("v", "pw") }, ErrInvalid},
		{"basic as bearer", Credentials{BasicAuth: &BasicAuth{Username: "u", Password: "pw"}}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer pw") }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			if tt.set != nil {
				tt.set(r)
			}
			if err := tt.c.Verify(r); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("unreadable file fails closed", func(t *testing.T) {
		c := Credentials{BearerTokenFile: filepath.Join(t.TempDir(), "gone")}
		r := httptest.NewRequest("POST", "/", nil)
		r.Header.Set("Authorization", "Bearer ")
		if err := c.Verify(r); err == nil || errors.Is(err, ErrMissing) {
			t.Errorf("Verify = %v, want the file error", err)
		}
	})
}

func TestRoundTripper(t *testing.T) {
	pwFile := writeFile(t, "pw1")
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	for _, c := range []Credentials{
		{},
		{BearerToken: "tok"},
		{BasicAuth: &BasicAuth{Username: "u", PasswordFile: pwFile}},
	} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		resp, err := (&http.Client{Transport: c.RoundTripper(http.DefaultTransport)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("Authorization") != "" {
			t.Error("RoundTripper modified the caller's request")
		}
	}
	// A rotated password file is read on the next request.
	if err := os.WriteFile(pwFile, []byte("pw2"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Credentials{BasicAuth: &BasicAuth{Username: "u", PasswordFile: pwFile}}
	resp, err := (&http.Client{Transport: c.RoundTripper(http.DefaultTransport)}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := []string{"", "Bearer tok", "Basic dTpwdzE=", "Basic dTpwdzI="}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	empty := writeFile(t, " \n")
	tests := []struct {
		c    Credentials
		want string
	}{
		{Credentials{}, ""},
		{Credentials{BearerToken: "a", BasicAuth: &BasicAuth{Username: "u", Password: "p"}}, "x: bearer_token and basic_auth are mutually exclusive"},
		{Credentials{BearerTokenFile: empty}, "x.bearer_token_file: secret file " + empty + " is empty"},
		{Credentials{BasicAuth: &BasicAuth{Username: "u", Password: "p", PasswordFile: empty}}, "x.basic_auth: password and password_file are mutually exclusive"},
		{Credentials{BasicAuth: &BasicAuth{Username: "u", PasswordFile: "/nonexistent"}}, "x.basic_auth.password_file: cannot read secret file"},
	}
	for _, tt := range tests {
		err := tt.c.Validate("x")
		if tt.want == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v", tt.c, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
	}
}
