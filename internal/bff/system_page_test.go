package bff

import (
	"encoding/json"
	"html"
	"strings"
	"testing"
	"time"
)

// TestSystemPageAndNotFound renders a system's page (state, location by
// name, actions, the user's own access and why) and the branded 404 page,
// for a signed-in user and an anonymous visitor.
func TestSystemPageAndNotFound(t *testing.T) {
	world := newFakeWorld("user-1")
	b := startBFF(t, "", "", world.start(t), []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Roles = []string{"CUSTOMER_EMPLOYEE"}
	c := b.client(t, b.mintSession(t, sess))

	resp, body := b.do(t, c, "GET", "/securitysystems/"+world.systems[1].ID, "", nil)
	body = html.UnescapeString(body)
	if resp.StatusCode != 200 {
		t.Fatalf("system page = %d:\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`<h1 class="name">Server room</h1>`,
		`data-testid="state">DISARMED<`,
		`>Head office</dd>`,
		`data-action="ARM"`,
		`id="access-own"`,
		`Role ARMER at Head office`,
		`data-live="` + world.systems[1].ID + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the system page lacks %s", want)
		}
	}

	// A system the user may not view, an id that is none, a path that is
	// no page: the branded 404, with the user's navigation.
	for _, path := range []string{"/securitysystems/" + world.systems[2].ID, "/securitysystems/not-an-id", "/no/such/page"} {
		resp, body := b.do(t, c, "GET", path, "", nil)
		if resp.StatusCode != 404 || !strings.Contains(body, "Nothing here") || !strings.Contains(body, `id="error-home"`) || !strings.Contains(body, `data-testid="user-name"`) {
			t.Errorf("GET %s = %d, want the branded 404 with the header:\n%s", path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: content type %s", path, ct)
		}
	}
	anon := b.client(t, nil)
	resp, body = b.do(t, anon, "GET", "/no/such/page", "", nil)
	if resp.StatusCode != 404 || !strings.Contains(body, "Nothing here") || strings.Contains(body, "404 page not found") {
		t.Errorf("anonymous 404 = %d:\n%s", resp.StatusCode, body)
	}
	// The API keeps answering problems, not pages.
	resp, body = b.do(t, c, "GET", "/api/nothing", "", nil)
	if resp.StatusCode != 404 || !strings.Contains(resp.Header.Get("Content-Type"), "problem+json") {
		t.Errorf("GET /api/nothing = %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// TestDashboardExplainsRows checks that a row without a button says why,
// from the user's access review, and that one with a button does not.
func TestDashboardExplainsRows(t *testing.T) {
	world := newFakeWorld("user-1")
	world.roles[fakeLoc1] = []string{"SECURITY_SYSTEM_DISARMER"}
	b := startBFF(t, "", "", world.start(t), []string{newKey(t)}, nil)
	sess := testSession(fakeJWT(map[string]any{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix()}))
	sess.Roles = []string{"CUSTOMER_EMPLOYEE"}
	c := b.client(t, b.mintSession(t, sess))
	_, body := b.do(t, c, "GET", "/", "", nil)
	body = html.UnescapeString(body)
	// Main entrance is armed: Disarm, no explanation. Server room is
	// disarmed: nothing to do, and why.
	main := body[strings.Index(body, `data-system="`+world.systems[0].ID):strings.Index(body, `data-system="`+world.systems[1].ID)]
	if !strings.Contains(main, `data-action="DISARM"`) || !strings.Contains(main, `data-testid="why"></p>`) {
		t.Errorf("the armed row:\n%s", main)
	}
	if want := "Already disarmed; you may disarm but not arm. Role DISARMER at Head office."; !strings.Contains(body, `data-testid="why">`+want+`</p>`) {
		t.Errorf("the disarmed row does not say %q:\n%s", want, body)
	}

	// What a page reads after a click: the system with the same why, and
	// a system the user may not view is refused as the service refused it.
	resp, body := b.do(t, c, "GET", "/ui/securitysystems/"+world.systems[1].ID, "", nil)
	var got liveUpdate
	if err := json.Unmarshal([]byte(body), &got); resp.StatusCode != 200 || err != nil || got.State != "DISARMED" || !strings.HasPrefix(got.Why, "Already disarmed") {
		t.Errorf("GET /ui/securitysystems/{server room} = %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(t, c, "GET", "/ui/securitysystems/"+world.systems[2].ID, "", nil)
	if resp.StatusCode != 404 || strings.Contains(body, "Warehouse") {
		t.Errorf("GET /ui/securitysystems/{warehouse} = %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.do(t, b.client(t, nil), "GET", "/ui/securitysystems/"+world.systems[1].ID, "", nil); resp.StatusCode != 401 {
		t.Errorf("anonymous GET /ui/securitysystems = %d, want 401", resp.StatusCode)
	}
}
