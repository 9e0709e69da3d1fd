package system

import (
	"bytes"
	"strings"
	"testing"
)

// TestWelcomeOfServeIAM: `serve iam` without --admin-password prints the
// generated password (only that process ever knows it) and says the data
// is in SQLite when no database URL is set; with PostgreSQL it says
// nothing about SQLite.
func TestWelcomeOfServeIAM(t *testing.T) {
	s := &System{cfg: Config{Only: ServiceIAM, DataDir: "./data"}, URLs: map[string]string{ServiceIAM: "http://localhost:9000"}, AdminPassword: "generated-pw-123"}
	var out bytes.Buffer
	s.PrintWelcome(&out)
	for _, want := range []string{"generated-pw-123", "shown only this once", "SQLite files in ./data for iam", "--database-url"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve iam welcome lacks %q:\n%s", want, out.String())
		}
	}
	s.cfg.DatabaseURL = "postgres://pg.internal/postgres"
	s.AdminPassword = ""
	out.Reset()
	s.PrintWelcome(&out)
	if strings.Contains(out.String(), "SQLite") || strings.Contains(out.String(), "password") {
		t.Errorf("serve iam on PostgreSQL with a chosen password:\n%s", out.String())
	}
}
