package aether

import (
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decoder is a JSON decoder for the store's event arrays that produces exactly what
// json.Unmarshal produces into []*Event (map[string]interface{} objects,
// []interface{} arrays, float64 numbers, strings, bools, nil). Every method returns
// ok=false on input it does not handle, and the caller starts over with encoding/json.
//
// Strings are copied out of the input (which may be library memory) into arena chunks;
// a decoded string therefore keeps its chunk (a few KiB, shared by neighbouring
// events' strings) alive, never the input.
type decoder struct {
	data   []byte
	pos    int
	chunk  []byte
	keys   map[string]string // interned object keys: a replay repeats the same few
	intern bool              // set from the second event on: one event has nothing to share
}

const (
	arenaChunk     = 8 << 10
	arenaMaxString = 512 // longer strings get an allocation of their own
	maxInternKeys  = 4096
	maxInternLen   = 64
)

func newDecoder(data []byte) *decoder {
	return &decoder{data: data}
}

// str copies b into the arena and returns it as a string.
func (d *decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaMaxString {
		return string(b)
	}
	if cap(d.chunk)-len(d.chunk) < len(b) {
		// Strings decode to at most their literal's length, so the input left bounds
		// what a chunk can ever hold: a short read gets a short chunk.
		size := arenaChunk
		if left := len(d.data) - d.pos + len(b); left < size {
			size = left
		}
		d.chunk = make([]byte, 0, size)
	}
	start := len(d.chunk)
	d.chunk = append(d.chunk, b...)
	// The chunk's bytes up to len are never written again (later strings are appended
	// after them), so the string is immutable as Go requires.
	return unsafe.String(&d.chunk[start], len(b))
}

func (d *decoder) key(b []byte) string {
	if s, ok := d.keys[string(b)]; ok {
		return s
	}
	s := d.str(b)
	if d.intern && len(b) <= maxInternLen {
		if d.keys == nil {
			d.keys = make(map[string]string, 32)
		}
		if len(d.keys) < maxInternKeys {
			d.keys[s] = s
		}
	}
	return s
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end reports whether only whitespace is left.
func (d *decoder) end() bool {
	d.skipSpace()
	return d.pos == len(d.data)
}

// consume skips whitespace and then c, if it is next.
func (d *decoder) consume(c byte) bool {
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) peek() byte {
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// literal consumes word (true, false, null) if it is next.
func (d *decoder) literal(word string) bool {
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// rawString returns the contents of the string literal at pos (without quotes) and
// whether they contain escapes or non-ASCII bytes (then use unquote).
func (d *decoder) rawString() (raw []byte, plain bool, ok bool) {
	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		return nil, false, false
	}
	start := d.pos + 1
	plain = true
	for i := start; i < len(d.data); i++ {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return d.data[start:i], plain, true
		case c == '\\':
			plain = false
			i++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return nil, false, false
}

// string decodes a string literal.
func (d *decoder) string() (string, bool) {
	raw, plain, ok := d.rawString()
	if !ok {
		return "", false
	}
	if plain {
		return d.str(raw), true
	}
	return d.unquote(raw)
}

// unquote decodes the contents of a string literal that has escapes or non-ASCII
// bytes, as encoding/json does: invalid UTF-8 and lone surrogates become U+FFFD.
func (d *decoder) unquote(s []byte) (string, bool) {
	if utf8.Valid(s) {
		hasEscape := false
		for _, c := range s {
			if c == '\\' {
				hasEscape = true
				break
			}
		}
		if !hasEscape {
			return d.str(s), true
		}
	}
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			r++
			if r >= len(s) {
				return "", false
			}
			switch s[r] {
			case '"', '\\', '/':
				b = append(b, s[r])
				r++
			case 'b':
				b = append(b, '\b')
				r++
			case 'f':
				b = append(b, '\f')
				r++
			case 'n':
				b = append(b, '\n')
				r++
			case 'r':
				b = append(b, '\r')
				r++
			case 't':
				b = append(b, '\t')
				r++
			case 'u':
				rr := getu4(s[r-1:])
				if rr < 0 {
					return "", false
				}
				r += 5
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						break
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
			default:
				return "", false
			}
		case c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return string(b), true
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c = c - '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number scans a JSON number at pos and returns its text and whether it is an integer
// (no fraction, no exponent).
func (d *decoder) number() (text []byte, integer bool, ok bool) {
	s := d.data
	i := d.pos
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return nil, false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		integer = false
		i++
		digits := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == digits {
			return nil, false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		integer = false
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		digits := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == digits {
			return nil, false, false
		}
	}
	d.pos = i
	return s[start:i], integer, true
}

// float decodes a number as encoding/json does into interface{} (strconv.ParseFloat).
func (d *decoder) float() (float64, bool) {
	text, integer, ok := d.number()
	if !ok {
		return 0, false
	}
	if integer && len(text) <= 15 {
		// Up to 15 digits an integer is exact in a float64, as ParseFloat would make it.
		var n int64
		neg := text[0] == '-'
		digits := text
		if neg {
			digits = text[1:]
		}
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			if n == 0 {
				return math.Copysign(0, -1), true // "-0" is negative zero
			}
			n = -n
		}
		return float64(n), true
	}
	// No retention: ParseFloat copies its input into any error it returns, and the
	// error is discarded anyway.
	f, err := strconv.ParseFloat(unsafe.String(&text[0], len(text)), 64)
	if err != nil {
		return 0, false // out of range: encoding/json reports it
	}
	return f, true
}

// value decodes any JSON value into interface{}.
func (d *decoder) value(depth int) (interface{}, bool) {
	if depth > maxDecodeDepth {
		return nil, false // encoding/json enforces its own nesting limit
	}
	switch c := d.peek(); {
	case c == '"':
		return d.string()
	case c == '{':
		m, ok := d.object(depth + 1)
		return m, ok
	case c == '[':
		return d.array(depth + 1)
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.float()
	}
	return nil, false
}

// maxDecodeDepth keeps the fast path far from encoding/json's nesting limit (10000).
const maxDecodeDepth = 512

// object decodes an object of any JSON values (Event.Data and the objects in it).
func (d *decoder) object(depth int) (map[string]interface{}, bool) {
	return decodeObject(d, func() (interface{}, bool) { return d.value(depth) })
}

// stringMap decodes an object of strings (Event.Metadata).
func (d *decoder) stringMap() (map[string]string, bool) {
	return decodeObject(d, func() (string, bool) {
		d.skipSpace()
		return d.string()
	})
}

// decodeObject decodes an object into a new map, as encoding/json does (keys unquoted,
// a repeated key keeps its last value); member decodes each value, starting after the
// colon.
func decodeObject[V any](d *decoder, member func() (V, bool)) (map[string]V, bool) {
	if !d.consume('{') {
		return nil, false
	}
	m := make(map[string]V)
	if d.consume('}') {
		return m, true
	}
	for {
		d.skipSpace()
		raw, plain, ok := d.rawString()
		if !ok {
			return nil, false
		}
		var k string
		if plain {
			k = d.key(raw)
		} else if k, ok = d.unquote(raw); !ok {
			return nil, false
		}
		if !d.consume(':') {
			return nil, false
		}
		v, ok := member()
		if !ok {
			return nil, false
		}
		m[k] = v
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return m, true
		}
		return nil, false
	}
}

func (d *decoder) array(depth int) ([]interface{}, bool) {
	if !d.consume('[') {
		return nil, false
	}
	a := make([]interface{}, 0, 4)
	if d.consume(']') {
		return a, true
	}
	for {
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			return a, true
		}
		return nil, false
	}
}

// Event fields, as bits of a "seen" mask: a repeated field goes to encoding/json,
// which merges a repeated "data" object instead of replacing it.
const (
	fieldID = 1 << iota
	fieldEventType
	fieldActorID
	fieldCommandID
	fieldVersion
	fieldData
	fieldMetadata
	fieldTimestamp
)

// event decodes one event object into e (a zero Event).
func (d *decoder) event(e *Event) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	seen := 0
	for {
		d.skipSpace()
		raw, plain, ok := d.rawString()
		if !ok || !plain {
			return false // escaped keys may fold to a field name: encoding/json decides
		}
		if !d.consume(':') {
			return false
		}
		d.skipSpace()
		var field int
		switch string(raw) {
		case "id":
			field = fieldID
			e.ID, ok = d.string()
		case "eventType":
			field = fieldEventType
			e.EventType, ok = d.string()
		case "actorId":
			field = fieldActorID
			e.ActorID, ok = d.string()
		case "commandId":
			field = fieldCommandID
			e.CommandID, ok = d.string()
		case "version":
			field = fieldVersion
			var text []byte
			var integer bool
			if text, integer, ok = d.number(); ok && integer {
				e.Version, ok = parseInt64(text)
			} else {
				ok = false
			}
		case "data":
			field = fieldData
			if d.literal("null") {
				e.Data = nil
			} else {
				e.Data, ok = d.object(1)
			}
		case "metadata":
			field = fieldMetadata
			if d.literal("null") {
				e.Metadata = nil
			} else {
				e.Metadata, ok = d.stringMap()
			}
		case "timestamp":
			field = fieldTimestamp
			start := d.pos
			var plain bool
			if _, plain, ok = d.rawString(); ok && plain {
				// time.Time.UnmarshalJSON takes the quoted literal and keeps nothing of it.
				ok = e.Timestamp.UnmarshalJSON(d.data[start:d.pos]) == nil
			} else {
				ok = false
			}
		default:
			return false // unknown (or case-folded) keys: encoding/json's rules apply
		}
		if !ok || seen&field != 0 {
			return false
		}
		seen |= field
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// parseInt64 parses a JSON integer as strconv.ParseInt does for encoding/json.
func parseInt64(text []byte) (int64, bool) {
	if len(text) <= 18 {
		var n int64
		neg := text[0] == '-'
		digits := text
		if neg {
			digits = text[1:]
		}
		for _, c := range digits {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(unsafe.String(&text[0], len(text)), 10, 64)
	return n, err == nil
}

// eventArray decodes `[event, ...]`. After the first event, Events are allocated in
// slabs sized from the bytes left, so a replay makes few allocations for them.
func (d *decoder) eventArray() ([]*Event, bool) {
	if !d.consume('[') {
		return nil, false
	}
	events := make([]*Event, 0, 4)
	if d.consume(']') {
		return events, true
	}
	var slab []Event
	start := d.pos
	for {
		var e *Event
		switch {
		case len(events) == 0:
			e = new(Event)
		case len(slab) > 0:
			e, slab = &slab[0], slab[1:]
		default:
			// Guess how many events are left from the bytes the first ones took.
			perEvent := (d.pos - start) / len(events)
			n := (len(d.data) - d.pos) / (perEvent + 1)
			n = max(1, min(n+1, 256))
			slab = make([]Event, n)
			e, slab = &slab[0], slab[1:]
		}
		if !d.event(e) {
			return nil, false
		}
		events = append(events, e)
		d.intern = true
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			return events, true
		}
		return nil, false
	}
}

// sequencedArray decodes ReadAll's `[{"sequence":N,"event":{...}}, ...]`.
func (d *decoder) sequencedArray() ([]SequencedEvent, bool) {
	if !d.consume('[') {
		return nil, false
	}
	out := make([]SequencedEvent, 0, 16)
	if d.consume(']') {
		return out, true
	}
	for {
		if !d.consume('{') {
			return nil, false
		}
		var se SequencedEvent
		seen := 0
		for {
			d.skipSpace()
			raw, plain, ok := d.rawString()
			if !ok || !plain || !d.consume(':') {
				return nil, false
			}
			d.skipSpace()
			switch string(raw) {
			case "sequence":
				text, integer, ok := d.number()
				if !ok || !integer || text[0] == '-' || seen&1 != 0 {
					return nil, false
				}
				n, err := strconv.ParseUint(string(text), 10, 64)
				if err != nil {
					return nil, false
				}
				se.Sequence = n
				seen |= 1
			case "event":
				if seen&2 != 0 {
					return nil, false
				}
				se.Event = new(Event)
				if !d.event(se.Event) {
					return nil, false
				}
				seen |= 2
			default:
				return nil, false
			}
			if d.consume(',') {
				continue
			}
			if d.consume('}') {
				break
			}
			return nil, false
		}
		out = append(out, se)
		if d.consume(',') {
			continue
		}
		if d.consume(']') {
			return out, true
		}
		return nil, false
	}
}
