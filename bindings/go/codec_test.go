package aether

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The hand-written codec must be indistinguishable from encoding/json: appendEvent writes
// json.Marshal's bytes (or fails where it fails), decodeEvents returns what json.Unmarshal
// returns (or fails where it fails).

type myString string

type point struct {
	X, Y float64
	Tag  string `json:"tag,omitempty"`
}

var stringPieces = []string{
	"", "a", "order-1", "Hello, World", "<script>", "a&b", "x>y", `"quoted"`, `back\slash`,
	"tab\there", "new\nline", "cr\r", "\b\f", "\x00", "\x01\x1f", "\x7f", "é", "日本語", "🎉",
	"\u2028", "\u2029", "\xff", "\xc3", "a\xffb", "\ufffd", "/", "\u0000end", " ", "{}[],:",
}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for n := r.Intn(4); n >= 0; n-- {
		b.WriteString(stringPieces[r.Intn(len(stringPieces))])
	}
	return b.String()
}

var floatPieces = []float64{
	0, math.Copysign(0, -1), 1, -1, 42, 0.1, 123.45, -3.5e-7, 1e-6, 9.99999e-7, 1e20, 1e21,
	-1e21, 123456789012345678, 1.7976931348623157e308, 5e-324, math.MaxInt64, 1 << 53, (1 << 53) + 2,
	0.000001, 1234.5678e10, 2.5e-10, -0.0000012,
}

func randFloat(r *rand.Rand) float64 {
	if r.Intn(3) == 0 {
		return (r.Float64() - 0.5) * math.Pow(10, float64(r.Intn(60)-30))
	}
	return floatPieces[r.Intn(len(floatPieces))]
}

// randValue is any value json.Marshal accepts in Data (and some it rejects, when bad).
func randValue(r *rand.Rand, depth int, bad bool) interface{} {
	n := 14
	if depth > 3 {
		n = 9 // scalars only
	}
	switch r.Intn(n) {
	case 0:
		return nil
	case 1:
		return r.Intn(2) == 0
	case 2:
		return randString(r)
	case 3:
		return randFloat(r)
	case 4:
		return r.Int63() - r.Int63()
	case 5:
		switch r.Intn(6) {
		case 0:
			return int(r.Int31())
		case 1:
			return uint64(r.Int63())
		case 2:
			return float32(randFloat(r))
		case 3:
			return int32(-r.Int31())
		case 4:
			return uint(r.Int31())
		default:
			return uint32(r.Int31())
		}
	case 6:
		return myString(randString(r)) // named type: encoding/json's path
	case 7:
		return json.Number("12.50")
	case 8:
		if bad && r.Intn(4) == 0 {
			return math.Inf(1)
		}
		return time.Date(2000+r.Intn(50), 1, 2, 3, 4, 5, r.Intn(1e9), time.FixedZone("", 3600*(r.Intn(25)-12)))
	case 9, 10:
		m := map[string]interface{}{}
		for k := r.Intn(6); k > 0; k-- {
			m[randString(r)] = randValue(r, depth+1, bad)
		}
		if r.Intn(10) == 0 {
			return map[string]interface{}(nil)
		}
		return m
	case 11, 12:
		if r.Intn(10) == 0 {
			return []interface{}(nil)
		}
		a := []interface{}{}
		for k := r.Intn(5); k > 0; k-- {
			a = append(a, randValue(r, depth+1, bad))
		}
		return a
	default:
		switch r.Intn(3) {
		case 0:
			return point{X: randFloat(r), Y: 2, Tag: randString(r)}
		case 1:
			return map[string]string{"k": randString(r)}
		default:
			return []string{randString(r), "b"}
		}
	}
}

var zones = []*time.Location{
	time.UTC, time.FixedZone("", 0), time.FixedZone("UTC+0", 0), time.FixedZone("IST", 5*3600+1800),
	time.FixedZone("", -8*3600), time.FixedZone("", 14*3600), time.FixedZone("", -12*3600),
	time.FixedZone("odd", 3600+30*60+15), time.FixedZone("", 24*3600), time.Local,
}

func randTime(r *rand.Rand, bad bool) time.Time {
	year := 1 + r.Intn(9998)
	switch r.Intn(8) {
	case 0:
		return time.Time{}
	case 1:
		year = 1970 + r.Intn(100)
	case 2:
		if bad {
			year = 10000 + r.Intn(10)
		}
	}
	loc := zones[r.Intn(len(zones))]
	if !bad && loc == zones[8] {
		loc = time.UTC
	}
	nanos := 0
	switch r.Intn(3) {
	case 0:
		nanos = r.Intn(1e9)
	case 1:
		nanos = r.Intn(1000) * 1e6
	}
	return time.Date(year, time.Month(1+r.Intn(12)), 1+r.Intn(28), r.Intn(24), r.Intn(60), r.Intn(60), nanos, loc)
}

func randEvent(r *rand.Rand, bad bool) *Event {
	e := &Event{
		ID:        randString(r),
		EventType: randString(r),
		ActorID:   randString(r),
		Version:   r.Int63() - r.Int63(),
		Timestamp: randTime(r, bad),
	}
	if r.Intn(2) == 0 {
		e.CommandID = randString(r)
	}
	switch r.Intn(4) {
	case 0: // nil Data
	case 1:
		e.Data = map[string]interface{}{}
	default:
		e.Data = map[string]interface{}{}
		for k := r.Intn(20); k > 0; k-- {
			e.Data[randString(r)] = randValue(r, 0, bad)
		}
	}
	switch r.Intn(3) {
	case 0:
	case 1:
		e.Metadata = map[string]string{}
	default:
		for k := 1 + r.Intn(5); k > 0; k-- {
			e.SetMetadata(randString(r), randString(r))
		}
	}
	return e
}

func TestAppendEventMatchesJSONMarshal(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		e := randEvent(r, i%2 == 0)
		want, wantErr := json.Marshal(e)
		got, gotErr := appendEvent([]byte("prefix"), e)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("case %d: json.Marshal error %v, appendEvent error %v\nevent: %#v", i, wantErr, gotErr, e)
		}
		if wantErr != nil {
			continue
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
		}
	}
}

func TestAppendValueCycleIsAnError(t *testing.T) {
	m := map[string]interface{}{}
	m["self"] = m
	if _, err := appendEvent(nil, &Event{Data: m}); err == nil {
		t.Fatal("a cyclic Data map encoded without error")
	}
	deep := map[string]interface{}{}
	cur := deep
	for i := 0; i < 200; i++ {
		next := map[string]interface{}{}
		cur["n"] = next
		cur = next
	}
	want, _ := json.Marshal(&Event{Data: deep})
	got, err := appendEvent(nil, &Event{Data: deep})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("deep nesting: %v\n got %s\nwant %s", err, got, want)
	}
}

// sameEvents compares decoded events field by field: Data and Metadata with DeepEqual
// (types included), timestamps by instant and zone, and everything by re-encoding.
func sameEvents(t *testing.T, got, want []*Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if (g == nil) != (w == nil) {
			t.Fatalf("event %d: nil mismatch", i)
		}
		if g == nil {
			continue
		}
		gn, gOff := g.Timestamp.Zone()
		wn, wOff := w.Timestamp.Zone()
		if !g.Timestamp.Equal(w.Timestamp) || gn != wn || gOff != wOff {
			t.Errorf("event %d: timestamp %v, want %v", i, g.Timestamp, w.Timestamp)
		}
		gc, wc := *g, *w
		gc.Timestamp, wc.Timestamp = time.Time{}, time.Time{}
		if !reflect.DeepEqual(gc, wc) {
			t.Errorf("event %d:\n got %#v\nwant %#v", i, gc, wc)
		}
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("event %d re-encodes differently:\n got %s\nwant %s", i, gj, wj)
		}
	}
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var want []*Event
	wantErr := json.Unmarshal(data, &want)
	got, gotErr := decodeEvents(data)
	if (wantErr != nil) != (gotErr != nil) {
		t.Fatalf("json.Unmarshal error %v, decodeEvents error %v\ninput: %q", wantErr, gotErr, data)
	}
	if wantErr == nil {
		sameEvents(t, got, want)
	}
}

func TestDecodeEventsMatchesJSONUnmarshal(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 3000; i++ {
		var events []*Event
		for n := r.Intn(5); n > 0; n-- {
			events = append(events, randEvent(r, false))
		}
		data, err := json.Marshal(events)
		if err != nil {
			continue // e.g. a float32 that overflowed to +Inf
		}
		if events == nil {
			data = []byte("[]")
		}
		checkDecode(t, data)
		// What json.Marshal writes (the store's format) never needs the fallback.
		if d := newDecoder(data); !func() bool { _, ok := d.eventArray(); return ok && d.end() }() {
			t.Fatalf("the fast path gave up on json.Marshal output: %s", data)
		}
	}
}

// Inputs the store never writes, but which must not decode differently if they occur.
var decodeSeeds = []string{
	`[]`, ` [ ] `, `null`, `[null]`, `{}`, `[{}]`, `[1]`, `[`, `]`, `[{"id":"a"}`, `[{"id":"a"}] x`,
	`[{"id":"a","eventType":"T","actorId":"x","version":1,"data":null,"timestamp":"2024-01-01T00:00:00Z"}]`,
	`[{"id":"a","version":1,"data":{"n":1.5,"s":"x","b":true,"z":null,"a":[1,"2",{"k":[]}],"o":{}},"timestamp":"2024-01-01T00:00:00.123456789+05:30"}]`,
	` [ { "id" : "a" , "version" : 2 , "data" : { "k" : [ 1 , 2 ] } } ] `,
	"[{\"id\":\"a\tb\"}]", `[{"id":"\u00e9\ud83c\udf89\ud800x\udc00\u2028"}]`, `[{"id":"\/\b\f\n\r\t\"\\"}]`,
	`[{"id":"\x"}]`, `[{"id":"\u12"}]`, `[{"id":"\'"}]`, "[{\"id\":\"\xff\xfe\"}]", `[{"ID":"folded"}]`,
	`[{"Id":"a","iD":"b"}]`, `[{"id":"a","id":"b"}]`, `[{"data":{"a":1},"data":{"b":2}}]`,
	`[{"metadata":{"a":"1"},"metadata":{"b":"2"}}]`, `[{"metadata":{"a":1}}]`, `[{"metadata":null}]`,
	`[{"version":1.0}]`, `[{"version":1e2}]`, `[{"version":-0}]`, `[{"version":9223372036854775807}]`,
	`[{"version":9223372036854775808}]`, `[{"version":-9223372036854775808}]`, `[{"version":null}]`,
	`[{"version":"1"}]`, `[{"id":null}]`, `[{"id":1}]`, `[{"data":[]}]`, `[{"data":"x"}]`,
	`[{"data":{"n":-0}}]`, `[{"data":{"n":-0.0}}]`, `[{"data":{"n":1e400}}]`, `[{"data":{"n":01}}]`,
	`[{"data":{"n":1.}}]`, `[{"data":{"n":.5}}]`, `[{"data":{"n":-}}]`, `[{"data":{"n":1e}}]`,
	`[{"data":{"n":123456789012345678901234567890}}]`, `[{"data":{"n":0.1e-400}}]`,
	`[{"data":{"t":tru}}]`, `[{"data":{"a":[1,]}}]`, `[{"data":{"a":1,}}]`, `[{"data":{"a" 1}}]`,
	`[{"data":{"\u0041":1,"A":2}}]`, `[{"timestamp":null}]`, `[{"timestamp":"bad"}]`,
	`[{"timestamp":"2024-01-01T00:00:00\u005a"}]`, `[{"timestamp":1}]`, `[{"unknown":1}]`,
	`[{"commandId":"c"}]`, "[{\"id\":\"a\"}\n,\r\n{\"id\":\"b\"}]", `[{"data":{"deep":[[[[[[[[[[1]]]]]]]]]]}}]`,
}

func TestDecodeEventsEdgeCases(t *testing.T) {
	for _, s := range decodeSeeds {
		t.Run("", func(t *testing.T) { checkDecode(t, []byte(s)) })
	}
	deep := strings.Repeat("[", 600) + strings.Repeat("]", 600)
	checkDecode(t, []byte(`[{"data":{"d":`+deep+`}}]`))
}

func FuzzDecodeEvents(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringPieces {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
		// And back: a string the store returns decodes as encoding/json decodes it.
		checkDecode(t, []byte(fmt.Sprintf(`[{"id":%s,"data":{%s:%s}}]`, want, want, want)))
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range floatPieces {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		want, wantErr := json.Marshal(v)
		got, gotErr := appendFloat(nil, v, 64)
		if (wantErr != nil) != (gotErr != nil) || !bytes.Equal(got, want) && wantErr == nil {
			t.Fatalf("appendFloat(%v) = %s, %v; want %s, %v", v, got, gotErr, want, wantErr)
		}
		want32, _ := json.Marshal(float32(v))
		if got32, err := appendFloat(nil, float64(float32(v)), 32); err == nil && !bytes.Equal(got32, want32) {
			t.Fatalf("appendFloat(float32 %v) = %s, want %s", float32(v), got32, want32)
		}
	})
}

func TestDecodeReplayResultAndSequenced(t *testing.T) {
	e := &Event{ID: "a", ActorID: "x", Version: 1, Timestamp: time.Date(2024, 1, 1, 0, 0, 0, 5, time.UTC)}
	ej, _ := json.Marshal(e)
	clean := []byte(`{"events":[` + string(ej) + `],"errors":[]}`)
	r, err := decodeReplayResult(clean)
	if err != nil || len(r.Events) != 1 || r.HasErrors() {
		t.Fatalf("clean replay result: %+v, %v", r, err)
	}
	sameEvents(t, r.Events, []*Event{e})
	damaged := []byte(`{"events":[],"errors":[{"sequence":7,"raw":"AAEC","cause":"bad record"}]}`)
	r, err = decodeReplayResult(damaged)
	if err != nil || len(r.Events) != 0 || r.Events == nil || len(r.Errors) != 1 {
		t.Fatalf("damaged replay result: %+v, %v", r, err)
	}
	re := r.Errors[0]
	if re.SequenceNumber != 7 || !bytes.Equal(re.RawData, []byte{0, 1, 2}) || re.Err.Error() != "aether: bad record" {
		t.Errorf("replay error = %+v", re)
	}
	seq := []byte(`[{"sequence":3,"event":` + string(ej) + `},{"sequence":4,"event":` + string(ej) + `}]`)
	got, err := decodeSequenced(seq)
	var want []SequencedEvent
	if err2 := json.Unmarshal(seq, &want); err != nil || err2 != nil || len(got) != 2 || got[1].Sequence != 4 {
		t.Fatalf("decodeSequenced = %+v, %v", got, err)
	}
	sameEvents(t, []*Event{got[0].Event, got[1].Event}, []*Event{want[0].Event, want[1].Event})
	for _, odd := range []string{`[{"event":null,"sequence":1}]`, `[{"sequence":-1}]`, `[{"Sequence":1}]`, `[x]`} {
		var want []SequencedEvent
		wantErr := json.Unmarshal([]byte(odd), &want)
		got, gotErr := decodeSequenced([]byte(odd))
		if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && mustMarshal(got) != mustMarshal(want)) {
			t.Errorf("decodeSequenced(%s) = %+v, %v; json: %+v, %v", odd, got, gotErr, want, wantErr)
		}
	}
}

func mustMarshal(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}
