package prometheus

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testVars = templateVars{service: "checkout", label: "job", labels: DefaultKeepLabels, rng: "1m"}

func TestExpand(t *testing.T) {
	tests := []struct {
		name, tmpl, service, want string
	}{
		{"match", `up{{{match}}}`, "checkout", `up{job="checkout"}`},
		{"match with more matchers", `x{{{match}},code=~"5.."}[{{range}}]`, "checkout", `x{job="checkout",code=~"5.."}[1m]`},
		{"service in a string", `up{svc="{{service}}"}`, `a"b\c`, `up{svc="a\"b\\c"}`},
		{"service escapes a newline", `up{svc="{{service}}"}`, "a\nb", `up{svc="a\nb"}`},
		{"service cannot close the string", `up{svc="{{service}}"}`, `"} or vector(1) or up{a="`, `up{svc="\"} or vector(1) or up{a=\""}`},
		{"match escapes too", `up{{{match}}}`, `x",y="z`, `up{job="x\",y=\"z"}`},
		{"service regex", `up{job=~"{{service_regex}}-.*"}`, "a.b+c", `up{job=~"a\\.b\\+c-.*"}`},
		{"labels", `sum by (le, {{labels}}) (x)`, "s", `sum by (le, version, instance, region) (x)`},
		{"unicode service", `up{svc="{{service}}"}`, "café", `up{svc="café"}`},
		{"quote escaped in template string", `up{a="\"{{service}}"}`, "s", `up{a="\"s"}`},
		{"no placeholders", `vector(1)`, "s", `vector(1)`},
		{"not a placeholder", `x{a="{{}}"}`, "s", `x{a="{{}}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVars
			v.service = tt.service
			got, err := expand(tt.tmpl, v)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct{ tmpl, want string }{
		{`up{job="{{servce}}"}`, "unknown placeholder {{servce}} at offset 8"},
		{`up{job={{service}}}`, "{{service}} at offset 7 must be inside a double-quoted string"},
		{`up{job='{{service}}'}`, "must be inside a double-quoted string"},
		{"up{job=`{{service}}`}", "must be inside a double-quoted string"},
		{`up{a="{{match}}"}`, "{{match}} at offset 6 must be outside strings and comments"},
		{`x[{{range}}] # {{labels}}`, "{{labels}} at offset 15 must be outside strings and comments"},
		{`up{job="x}`, "unterminated string"},
		{"   ", "empty query"},
	}
	for _, tt := range tests {
		err := checkTemplate(tt.tmpl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkTemplate(%q) = %v, want %q", tt.tmpl, err, tt.want)
		}
	}
}

// TestDefaultQueriesGolden pins the expanded default queries; rewrite with
// go test -run DefaultQueriesGolden -update.
func TestDefaultQueriesGolden(t *testing.T) {
	var b strings.Builder
	for _, q := range DefaultQueries {
		e, err := expand(q.Expr, testVars)
		if err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
		b.WriteString("# " + q.Name + "\n" + e + "\n\n")
	}
	path := filepath.Join("testdata", "default_queries.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("expanded default queries differ from %s (run with -update if intended):\n%s", path, b.String())
	}
}

// maskStrings replaces the content of every string literal of a PromQL
// expression with nothing, leaving its structure: what a service name must
// never change. Unterminated strings are kept whole.
func maskStrings(expr string) string {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '"' && c != '\'' && c != '`' {
			if c == '#' { // a comment runs to the end of the line
				j := strings.IndexByte(expr[i:], '\n')
				if j < 0 {
					b.WriteString(expr[i:])
					return b.String()
				}
				b.WriteString(expr[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(expr) && expr[j] != c {
			if expr[j] == '\\' && c != '`' {
				j++
			}
			j++
		}
		if j >= len(expr) {
			b.WriteString(expr[i:])
			return b.String()
		}
		b.WriteByte(c)
		b.WriteByte(c)
		i = j
	}
	return b.String()
}

// FuzzExpand checks that no service name changes the structure of a
// query: the expansion with any service equals the expansion with a plain
// one once string contents are masked, and every double-quoted string of
// the expansion is a valid Go (and so PromQL) string literal.
func FuzzExpand(f *testing.F) {
	for _, q := range DefaultQueries {
		f.Add(q.Expr, "checkout")
	}
	f.Add(`up{svc="{{service}}"} # {{x}}`, `"} or vector(1) #`)
	f.Add(`up{job=~"{{service_regex}}"}`, "a\\\"\n\x00\xff")
	f.Add(`x{{{match}}}[{{range}}]`, "`'\"")
	f.Add("up{a=`{{service}}`}", "s")
	f.Fuzz(func(t *testing.T, tmpl, service string) {
		if checkTemplate(tmpl) != nil {
			if _, err := expand(tmpl, testVars); err == nil && strings.TrimSpace(tmpl) != "" {
				t.Fatalf("expand accepted %q, which checkTemplate rejects", tmpl)
			}
			return
		}
		v := testVars
		v.service = service
		got, err := expand(tmpl, v)
		if err != nil {
			t.Fatalf("expand(%q) failed after checkTemplate passed: %v", tmpl, err)
		}
		plain, err := expand(tmpl, testVars)
		if err != nil {
			t.Fatal(err)
		}
		if maskStrings(got) != maskStrings(plain) {
			t.Fatalf("service %q changed the structure of %q:\n%s\nvs\n%s", service, tmpl, maskStrings(got), maskStrings(plain))
		}
		if strings.Contains(tmpl, "{{service}}") && !strings.Contains(got, escapeDouble(service)) {
			t.Fatalf("expansion %q lacks the escaped service", got)
		}
		if s := escapeDouble(service); strings.Contains(tmpl, "{{service}}") {
			if u, err := strconv.Unquote(`"` + s + `"`); err != nil || u != service {
				t.Fatalf("escaped service %q unquotes to %q (%v), want %q", s, u, err, service)
			}
		}
	})
}
