package cursor_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/realguardio/realguardio/internal/platform/apperr"
	"github.com/realguardio/realguardio/internal/platform/cursor"
)

type key struct {
	Name string `json:"n"`
	ID   string `json:"i"`
}

func validKey(k key) bool { return k.ID != "" }

// TestRoundTrip: what Encode makes, Decode reads back, in the wire format
// the lists have always sent (unpadded base64url of the key's JSON), so
// cursors handed out before the codec was shared still work.
func TestRoundTrip(t *testing.T) {
	k := key{Name: "Front door ünicode/+?", ID: "00000000-0000-0000-0000-000000000001"}
	s := cursor.Encode(k)
	if strings.ContainsAny(s, "=+/") {
		t.Fatalf("%q is not unpadded base64url", s)
	}
	got, err := cursor.Decode(s, validKey)
	if err != nil || got != k {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v", k, got, err)
	}
	if want := "eyJuIjoiYSIsImkiOiJiIn0"; cursor.Encode(key{"a", "b"}) != want {
		t.Fatalf("Encode changed the wire format: %q, want %q", cursor.Encode(key{"a", "b"}), want)
	}
}

// TestRefused: anything but a valid key of the list is a Malformed cursor
// parameter, and the zero key comes with it.
func TestRefused(t *testing.T) {
	for name, s := range map[string]string{
		"not base64": "!!",
		"not JSON":   "bm90IGpzb24",
		"wrong type": cursor.Encode([]string{"a", "b"}),
		"no id":      "e30", // {}
		"too long":   strings.Repeat("A", cursor.MaxLen+1),
	} {
		got, err := cursor.Decode(s, validKey)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.Malformed || ae.Field != "cursor" {
			t.Errorf("%s: err %v, want a Malformed cursor", name, err)
		}
		if got != (key{}) {
			t.Errorf("%s: key %+v with the error", name, got)
		}
	}
	if _, err := cursor.Decode("e30", func(key) bool { return true }); err != nil {
		t.Errorf("a key the list accepts is refused: %v", err)
	}
}
