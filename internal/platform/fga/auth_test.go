package fga_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/realguardio/realguardio/internal/platform/fga"
	"github.com/realguardio/realguardio/internal/policy"
)

// TestEmbeddedPresharedKey checks that an embedded OpenFGA started with a
// pre-shared key answers 401 (OpenFGA's own error body) to a request
// without the key or with a wrong one, so no local process can write
// tuples, and that a Client configured with the key as APIToken works.
func TestEmbeddedPresharedKey(t *testing.T) {
	const key = "k3y-for-test"
	e, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: "127.0.0.1:0", PresharedKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })

	do := func(authorization string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, e.URL()+"/stores", nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Code string `json:"code"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Code
	}
	for _, a := range []string{"", "Bearer wrong", "Basic " + key, "Bearer " + key + "x"} {
		if code, errCode := do(a); code != http.StatusUnauthorized || (errCode != "unauthenticated" && errCode != "bearer_token_missing") {
			t.Errorf("Authorization %q: status %d code %q, want 401", a, code, errCode)
		}
	}
	if code, _ := do("Bearer " + key); code != http.StatusOK {
		t.Fatalf("with the key: status %d", code)
	}
	// /healthz stays open, as it reveals nothing.
	if resp, err := http.Get(e.URL() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ctx := context.Background()
	noKey := newClient(t, e.URL())
	if err := noKey.Bootstrap(ctx); err == nil {
		t.Fatal("a client without the key bootstrapped")
	}
	c, err := fga.New(fga.Config{URL: e.URL(), APIToken: key, Timeout: 5 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap with the key: %v", err)
	}
	if err := c.Write(ctx, facts(t), nil); err != nil {
		t.Fatalf("write with the key: %v", err)
	}
	if !check(t, c, "alice", policy.OpDisarm, "ss1") {
		t.Error("alice may not disarm ss1 after the write")
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready with the key: %v", err)
	}
	if strings.Contains(e.URL(), key) {
		t.Error("the URL holds the key")
	}
}

// TestEmbeddedRefusesOpenNonLoopback checks that an embedded OpenFGA
// reachable from other machines cannot be started without a key.
func TestEmbeddedRefusesOpenNonLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		e, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Addr: addr})
		if err == nil {
			_ = e.Close()
			t.Errorf("started on %s without a key", addr)
		}
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if e, err := fga.StartEmbedded(context.Background(), fga.EmbeddedOptions{Listener: ln}); err == nil {
		_ = e.Close()
		t.Error("started on a 0.0.0.0 listener without a key")
	}
}
