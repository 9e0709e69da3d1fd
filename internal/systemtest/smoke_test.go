package systemtest

import (
	"testing"
)

func TestSmoke(t *testing.T) {
	s := Start(t, Options{Strategy: "replicate"})
	admin := s.MustAdmin()
	t.Logf("admin sub %s", admin.Session().Subject)
	s.MustConverge()
	s.MustConverge()
}
