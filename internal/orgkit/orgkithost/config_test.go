package orgkithost

import (
	"strings"
	"testing"
)

// A service's audience is also its IAM client id unless told otherwise, as
// the IAM names service clients after their audience.
func TestConfigDefaults(t *testing.T) {
	c := Config{Issuer: "http://localhost:9000"}.WithDefaults("realguardio-dealer")
	if c.Audience != "realguardio-dealer" || c.IAMClientID != "realguardio-dealer" {
		t.Fatalf("defaults: %+v", c)
	}
	c = Config{Issuer: "http://localhost:9000", Audience: "a", IAMClientID: "b"}.WithDefaults("realguardio-dealer")
	if c.Audience != "a" || c.IAMClientID != "b" {
		t.Fatalf("set values overridden: %+v", c)
	}
	if iam := c.IAM(nil); iam.Audience != "a" || iam.ClientID != "b" || iam.Issuer != c.Issuer {
		t.Fatalf("IAM settings: %+v", iam)
	}
	err := Config{Issuer: "localhost:9000"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "--issuer") {
		t.Fatalf("a relative issuer: %v", err)
	}
}
