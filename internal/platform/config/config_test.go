package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestEnvAndFlags(t *testing.T) {
	env := map[string]string{"REALGUARDIO_LISTEN_ADDR": ":9999", "REALGUARDIO_TIMEOUT": "3s", "REALGUARDIO_NAME": "fromenv"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l := NewLoader(fs, func(k string) string { return env[k] })
	var addr, name string
	var timeout time.Duration
	l.String(&addr, "listen-addr", ":1", "")
	l.String(&name, "name", "def", "")
	l.Duration(&timeout, "timeout", time.Second, "")
	if err := l.Parse([]string{"--name", "fromflag"}); err != nil {
		t.Fatal(err)
	}
	if addr != ":9999" || timeout != 3*time.Second || name != "fromflag" {
		t.Fatalf("got addr=%q timeout=%v name=%q", addr, timeout, name)
	}
}

func TestBadEnvNamesVariable(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l := NewLoader(fs, func(k string) string {
		if k == "REALGUARDIO_TIMEOUT" {
			return "soon"
		}
		return ""
	})
	var d time.Duration
	l.Duration(&d, "timeout", time.Second, "")
	err := l.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "REALGUARDIO_TIMEOUT") {
		t.Fatalf("error %v does not name the variable", err)
	}
}

func TestProblems(t *testing.T) {
	var p Problems
	p.CheckHTTPURL("issuer", "localhost:9000")
	p.CheckAddr("listen", "nope")
	p.CheckOneOf("authz", "magic", "fetch", "replicate")
	err := p.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--issuer", "REALGUARDIO_LISTEN", "magic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
