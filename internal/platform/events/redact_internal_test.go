package events

import (
	"strings"
	"testing"
)

// TestRedactURL checks that neither a password nor a token given as the
// URL's user survives redaction, since the result is logged.
func TestRedactURL(t *testing.T) {
	for _, raw := range []string{"nats://s3cret@127.0.0.1:4223", "nats://user:s3cret@127.0.0.1:4223", "nats://s3cret@a:1,nats://b:2"} {
		if got := RedactURL(raw); strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q", raw, got)
		}
	}
	if got := RedactURL("nats://127.0.0.1:4223,nats://127.0.0.2:4223"); got != "nats://127.0.0.1:4223,nats://127.0.0.2:4223" {
		t.Errorf("RedactURL without credentials = %q", got)
	}
	if got := RedactURL("nats://s3cret@a:1,nats://b:2"); got != "nats://REDACTED@a:1,nats://b:2" {
		t.Errorf("RedactURL of a list = %q", got)
	}
}
