package paging_test

import (
	"net/url"
	"slices"
	"testing"

	"github.com/realguardio/realguardio/internal/orgkit/paging"
	"github.com/realguardio/realguardio/internal/platform/apperr"
)

func TestParse(t *testing.T) {
	req, err := paging.Parse(url.Values{}, "L", 2, true)
	if err != nil || req.Limit != paging.DefaultLimit || req.After != nil || req.Query != "" {
		t.Fatalf("defaults = %+v, %v", req, err)
	}
	cases := []struct {
		v     url.Values
		code  apperr.Code
		field string
	}{
		{url.Values{"limit": {"abc"}}, apperr.Malformed, "limit"},
		{url.Values{"limit": {"1", "2"}}, apperr.Malformed, "limit"},
		{url.Values{"limit": {"0"}}, apperr.Invalid, "limit"},
		{url.Values{"limit": {"501"}}, apperr.Invalid, "limit"},
		{url.Values{"limit": {"-1"}}, apperr.Invalid, "limit"},
		{url.Values{"cursor": {"!!"}}, apperr.Malformed, "cursor"},
		{url.Values{"cursor": {"e30"}}, apperr.Malformed, "cursor"},
		{url.Values{"q": {string(make([]byte, 201))}}, apperr.Invalid, "q"},
		{url.Values{"q": {"\xff"}}, apperr.Malformed, "q"},
	}
	for _, c := range cases {
		_, err := paging.Parse(c.v, "L", 2, true)
		ae := apperr.As(err)
		if ae == nil || ae.Code != c.code || ae.Field != c.field {
			t.Errorf("Parse(%v) = %v; want %s naming %s", c.v, err, c.code, c.field)
		}
	}
	for _, n := range []string{"1", "500", " 7 "} {
		if _, err := paging.Parse(url.Values{"limit": {n}}, "L", 2, true); err != nil {
			t.Errorf("limit=%q: %v", n, err)
		}
	}
}

// TestCursor checks that a cursor continues its own list only: another
// list, another filter or another key length is a 400 naming cursor.
func TestCursor(t *testing.T) {
	req, _ := paging.Parse(url.Values{"limit": {"2"}, "q": {"a"}}, "L", 2, true)
	page := paging.Cut(req, []string{"a1", "a2", "a3"}, func(s string) []string { return []string{s, "id-" + s} })
	if !slices.Equal(page.Items, []string{"a1", "a2"}) || page.Next == "" {
		t.Fatalf("Cut = %+v", page)
	}
	next, err := paging.Parse(url.Values{"limit": {"2"}, "q": {"a"}, "cursor": {page.Next}}, "L", 2, true)
	if err != nil || !slices.Equal(next.After, []string{"a2", "id-a2"}) {
		t.Fatalf("continue = %+v, %v", next, err)
	}
	for _, v := range []url.Values{
		{"cursor": {page.Next}},             // filter dropped
		{"q": {"b"}, "cursor": {page.Next}}, // filter changed
	} {
		if _, err := paging.Parse(v, "L", 2, true); apperr.CodeOf(err) != apperr.Malformed {
			t.Errorf("Parse(%v) = %v; want malformed cursor", v, err)
		}
	}
	if _, err := paging.Parse(url.Values{"q": {"a"}, "cursor": {page.Next}}, "M", 2, true); apperr.CodeOf(err) != apperr.Malformed {
		t.Errorf("cursor of another list accepted: %v", err)
	}
	if _, err := paging.Parse(url.Values{"q": {"a"}, "cursor": {page.Next}}, "L", 3, true); apperr.CodeOf(err) != apperr.Malformed {
		t.Errorf("cursor of another key length accepted: %v", err)
	}
	last := paging.Cut(req, []string{"a1", "a2"}, func(s string) []string { return []string{s, s} })
	if last.Next != "" || len(last.Items) != 2 {
		t.Fatalf("last page = %+v", last)
	}
	if body := paging.Body("xs", last); body["nextCursor"] != nil {
		t.Fatalf("last page body = %v", body)
	}
	empty := paging.Cut[string](req, nil, nil)
	if empty.Items == nil {
		t.Fatal("an empty page must be [] in JSON, not null")
	}
}

func TestPredicates(t *testing.T) {
	req, _ := paging.Parse(url.Values{"q": {"50%_a\\"}}, "L", 2, true)
	w, args := req.Contains("name")
	if w != `lower(name) LIKE ? ESCAPE '\'` || args[0] != `%50\%\_a\\%` {
		t.Fatalf("Contains = %q %v", w, args)
	}
	if w, _ := req.Where("name", "id"); w != "" {
		t.Fatalf("first page has a keyset predicate %q", w)
	}
	req.After = []string{"n", "i"}
	if w, args := req.Where("name", "id"); w != "(name, id) > (?, ?)" || len(args) != 2 {
		t.Fatalf("Where = %q %v", w, args)
	}
}
