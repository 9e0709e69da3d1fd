package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeEvent decodes a message's envelope as json.Unmarshal into an
// Event would, with the same result and the same acceptance. The
// envelopes the relay publishes (json.Marshal of an Event: the eight
// fields once each, plain strings, an object or array payload) are read
// by a direct scan of the envelope that validates only the payload with
// json.Valid; json.Unmarshal scanned every message twice (its validity
// check, then the decoding) through reflection, 6 % of a rebuild's CPU
// time. Anything else (escapes in a string, another key, a repeated one,
// null, a malformed envelope) is decoded by json.Unmarshal itself, so
// what it accepts, refuses and fills in stays the reference.
func decodeEvent(data []byte, ev *Event) error {
	if fastDecodeEvent(data, ev) {
		return nil
	}
	*ev = Event{}
	return json.Unmarshal(data, ev)
}

// envelopeFields are the envelope's keys as json.Marshal writes them, in
// the order of seen's bits.
var envelopeFields = [...]string{"id", "type", "aggregateType", "aggregateId", "sequence", "occurredAt", "producer", "payload"}

// fastDecodeEvent fills ev from data and reports true when data is an
// envelope of the plain shape decodeEvent describes; it reports false,
// leaving ev in any state, for anything else.
func fastDecodeEvent(data []byte, ev *Event) bool {
	*ev = Event{}
	d := envelopeScanner{data: data}
	if !d.consume('{') {
		return false
	}
	var seen uint
	for first := true; ; first = false {
		d.space()
		if d.peek() == '}' {
			if !first {
				return false // a trailing comma would have been refused before
			}
			d.pos++
			break
		}
		key, ok := d.plainString()
		if !ok || !d.consume(':') {
			return false
		}
		field := -1
		for i, f := range envelopeFields {
			if string(key) == f {
				field = i
				break
			}
		}
		if field < 0 || seen&(1<<field) != 0 {
			return false
		}
		seen |= 1 << field
		d.space()
		switch field {
		case 4:
			n, ok := d.integer()
			if !ok {
				return false
			}
			ev.Sequence = n
		case 5:
			start := d.pos
			if _, ok := d.plainString(); !ok {
				return false
			}
			if ev.OccurredAt.UnmarshalJSON(data[start:d.pos]) != nil {
				return false
			}
		case 7:
			raw, ok := d.compound()
			if !ok || !json.Valid(raw) {
				return false
			}
			ev.Payload = append(json.RawMessage(nil), raw...)
		default:
			s, ok := d.plainString()
			if !ok {
				return false
			}
			str := string(s)
			switch field {
			case 0:
				ev.ID = str
			case 1:
				ev.Type = str
			case 2:
				ev.AggregateType = str
			case 3:
				ev.AggregateID = str
			case 6:
				ev.Producer = str
			}
		}
		d.space()
		if d.peek() == ',' {
			d.pos++
			continue
		}
		if !d.consume('}') {
			return false
		}
		break
	}
	d.space()
	return d.pos == len(data)
}

// envelopeScanner reads an envelope's tokens.
type envelopeScanner struct {
	data []byte
	pos  int
}

// space skips JSON whitespace.
func (d *envelopeScanner) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte (0 at the end).
func (d *envelopeScanner) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// consume skips whitespace and then c, reporting whether c was there.
func (d *envelopeScanner) consume(c byte) bool {
	d.space()
	if d.peek() != c {
		return false
	}
	d.pos++
	return true
}

// plainString reads a string without escapes, control characters or
// invalid UTF-8 (which json.Unmarshal would unescape or replace) and
// returns its content.
func (d *envelopeScanner) plainString() ([]byte, bool) {
	d.space()
	if d.peek() != '"' {
		return nil, false
	}
	start := d.pos + 1
	end := bytes.IndexByte(d.data[start:], '"')
	if end < 0 {
		return nil, false
	}
	s := d.data[start : start+end]
	for _, b := range s {
		if b < 0x20 || b == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	d.pos = start + end + 1
	return s, true
}

// integer reads a JSON integer (no fraction, no exponent) that fits an
// int64.
func (d *envelopeScanner) integer() (int64, bool) {
	start := d.pos
	if d.peek() == '-' {
		d.pos++
	}
	digits := d.pos
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
	}
	if d.pos == digits || d.data[digits] == '0' && d.pos-digits > 1 {
		return 0, false // no digits, or a leading zero JSON refuses
	}
	switch d.peek() {
	case '.', 'e', 'E':
		return 0, false
	}
	n, err := strconv.ParseInt(string(d.data[start:d.pos]), 10, 64)
	return n, err == nil
}

// compound returns the bytes of the object or array that starts at the
// current position, matching brackets outside strings; the caller checks
// that they are valid JSON.
func (d *envelopeScanner) compound() ([]byte, bool) {
	start := d.pos
	if c := d.peek(); c != '{' && c != '[' {
		return nil, false
	}
	depth := 0
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '"':
			// Skip the string, escapes included.
			d.pos++
			for d.pos < len(d.data) && d.data[d.pos] != '"' {
				if d.data[d.pos] == '\\' {
					d.pos++
				}
				d.pos++
			}
			if d.pos >= len(d.data) {
				return nil, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				d.pos++
				return d.data[start:d.pos], true
			}
		}
		d.pos++
	}
	return nil, false
}
