package events

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// decodeCorpus are envelopes of the relay's shape and variants of them
// that json.Unmarshal treats in its own ways (escapes, other keys, case,
// repetition, null, malformed JSON), which decodeEvent must treat alike.
func decodeCorpus(t testing.TB) [][]byte {
	ev := Event{ID: "0b6d8c1e-7d1c-4b56-9a3e-2f1f1c9d2e11", Type: "customer.employee_roles_set", AggregateType: "customer",
		AggregateID: "c-1", Sequence: 42, OccurredAt: time.Date(2026, 12, 2, 13, 0, 0, 123456789, time.UTC), Producer: "customer",
		Payload: json.RawMessage(`{"customerId":"c-1","roles":["A","B"],"nested":{"s":"x\"]}","n":[1,2,{"a":null}]}}`)}
	plain, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	s := string(plain)
	out := []string{
		s,
		" \n\t" + s + "\r\n ",
		`{}`, `[]`, `null`, `""`, ``, `{`, `{"id":"x",}`, `{"id":"x"}x`, `{"id":"x"}{}`, `{"id" "x"}`, `{"id":"x""type":"y"}`,
		`{"id":"a\u0062c","type":"t"}`, `{"id":"a\"b"}`, `{"ID":"x"}`, `{"Id":"x","id":"y"}`, `{"id":"x","id":"y"}`,
		`{"id":null}`, `{"id":1}`, `{"id":"x","other":1}`, `{"id":"x","sequence":1.0}`, `{"id":"x","sequence":1e3}`,
		`{"id":"x","sequence":01}`, `{"id":"x","sequence":-0}`, `{"id":"x","sequence":-}`, `{"id":"x","sequence":9223372036854775808}`,
		`{"id":"x","sequence":-9223372036854775808}`, `{"id":"x","sequence":"1"}`, `{"id":"x","occurredAt":"2026-12-02T13:00:00Z"}`,
		`{"id":"x","occurredAt":"2026-12-02 13:00:00"}`, `{"id":"x","occurredAt":null}`, `{"id":"x","occurredAt":"2026-12-02T13:00:00+01:00"}`,
		`{"id":"x","payload":null}`, `{"id":"x","payload":"s"}`, `{"id":"x","payload":1}`, `{"id":"x","payload":[1,2]}`,
		`{"id":"x","payload":{"a":[}}`, `{"id":"x","payload":{"a":1}]}`, `{"id":"x","payload":{"a":"\u00e9\\"}}`, `{"id":"x","payload":{ "a" : 1 } }`,
		`{"id":"x","payload":{"a":1},"payload":{"b":2}}`, `{"id":"x","payload":{"a":tru}}`, `{"id":"x","payload":{"a":"` + "\x01" + `"}}`,
		`{"id":"x` + "\x01" + `"}`, `{"id":"x` + "\xff" + `"}`, `{"id":"é","producer":"customer"}`, "\xef\xbb\xbf" + s,
		strings.Replace(s, `"type"`, `"Type"`, 1), strings.Replace(s, `"payload":{`, `"payload" : {`, 1),
		strings.TrimSuffix(s, "}"), strings.Replace(s, `,"producer":"customer"`, "", 1),
	}
	corpus := make([][]byte, len(out))
	for i, o := range out {
		corpus[i] = []byte(o)
	}
	return corpus
}

// checkDecode fails t when decodeEvent and json.Unmarshal disagree on data.
func checkDecode(t *testing.T, data []byte) {
	var want, got Event
	wantErr := json.Unmarshal(data, &want)
	gotErr := decodeEvent(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: json.Unmarshal error %v, decodeEvent error %v", data, wantErr, gotErr)
	}
	if wantErr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("%q: json.Unmarshal gives %+v, decodeEvent %+v", data, want, got)
	}
}

func TestDecodeEventMatchesUnmarshal(t *testing.T) {
	fast := 0
	for _, data := range decodeCorpus(t) {
		checkDecode(t, data)
		var ev Event
		if fastDecodeEvent(data, &ev) {
			fast++
		}
	}
	// The relay's own envelopes (the first entries) take the direct scan;
	// otherwise the test would only compare json.Unmarshal with itself.
	if fast < 2 {
		t.Fatalf("only %d envelopes were decoded by the direct scan", fast)
	}
	// Mutants of the corpus (a byte changed, inserted or removed, from a
	// fixed seed) reach the corners the list does not name.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,\ -.0123456789eEnulltrfase` + "\x00\x7f\xc3\xa9\xff")
	for range 20000 {
		corpus := decodeCorpus(t)
		data := append([]byte(nil), corpus[rng.IntN(len(corpus))]...)
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(data) + 1)
			c := alphabet[rng.IntN(len(alphabet))]
			switch op := rng.IntN(3); {
			case op == 0 && i < len(data):
				data[i] = c
			case op == 1:
				data = append(data[:i], append([]byte{c}, data[i:]...)...)
			case i < len(data):
				data = append(data[:i], data[i+1:]...)
			}
		}
		checkDecode(t, data)
	}
	var ev Event
	if !fastDecodeEvent(decodeCorpus(t)[0], &ev) || ev.Sequence != 42 || ev.Producer != "customer" {
		t.Fatalf("the relay's envelope was not decoded by the direct scan: %+v", ev)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, data := range decodeCorpus(f) {
		f.Add(data)
	}
	f.Fuzz(checkDecode)
}
