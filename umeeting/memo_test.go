package umeeting

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// memoRecords are records that a poll lists again and again, among them
// the ones where reading only part of a record would go wrong.
func memoRecords() []string {
	return []string{
		meetingRecord("plain", dayEnd),
		// uuid last, and the end before it
		`{"end_time": "2026-11-20T11:05:00Z", "start_time": "2026-11-20T10:55:00Z", "email": "Last@X.cn", "host": "L", "uuid": "uuid-last"}`,
		// duplicate names: the last one wins, for uuid and end_time alike
		`{"uuid": "first-uuid", "end_time": "2026-11-20T11:00:00Z", "start_time": "2026-11-20T10:50:00Z", "uuid": "second-uuid", "end_time": "2026-11-20T11:10:00Z"}`,
		`{"uuid": "dup-end", "start_time": "2026-11-20T10:50:00Z", "end_time": "2026-11-20T11:00:00Z", "end_time": "not a time"}`,
		// escapes and other spellings of the same values
		`{"uuid": "esc\u0061ped", "email": "\u0041@x.cn", "start_time": "2026-11-20 18:50:00+08:00", "end_time": "2026-11-20T11:00:00Z", "has_video": "YES", "participants": "4"}`,
		// invalid records: counted as invalid every time they are listed
		record("uuid", `"no-end"`, "end_time", del),
		record("uuid", `""`),
		record("participants", `-1`),
		`"not an object"`,
		`{"uuid": {"nested": 1}, "end_time": "2026-11-20T11:00:00Z"}`,
		// valid, outside the window: never handed over
		meetingRecord("outside", dayEnd.Add(-5*time.Hour)),
		// the same meeting twice in one answer
		meetingRecord("plain", dayEnd),
	}
}

// fullParse decodes body as a decoder without a memo does, with the
// testClient's settings and fetchDay's window.
func fullParse(t *testing.T, body string) *eventSink {
	t.Helper()
	sink := &eventSink{}
	d := newDecoder(time.UTC, time.Hour)
	if _, err := d.decode(strings.NewReader(body), mustTime("2026-11-20T10:00:00Z"), mustTime("2026-11-20T12:00:00Z"), sink); err != nil {
		t.Fatal(err)
	}
	sink.CommitPage()
	return sink
}

// TestMemoEqualsFullParse: a record a poll listed before is not parsed
// again, and what the sink gets is what a full parse gives, poll after
// poll: meetings, invalid records with their JSON, the order.
func TestMemoEqualsFullParse(t *testing.T) {
	body := envelope(memoRecords())
	changed := memoRecords()
	changed[0] = meetingRecord("plain", dayEnd.Add(time.Minute))                                                       // same uuid, another end
	changed[1] = strings.Replace(changed[1], `"2026-11-20T11:05:00Z"`, `"2026-11-20T11:05:00"`, 1)                     // zone-less now
	changed[4] = strings.Replace(changed[4], `"participants": "4"`, `"participants": "4.5"`, 1)                        // invalid now
	changed = append(changed, `{"uuid": "new", "end_time": "2026-11-20T11:30:00Z", "duration": 12}`, memoRecords()[8]) // new, and a repeat
	var large []string                                                                                                 // more than maxAhead: decoded as it streams
	for i := 0; len(strings.Join(large, ",")) <= maxAhead; i++ {
		large = append(large, memoRecords()[i%len(memoRecords())], meetingRecord(fmt.Sprint("large", i), dayEnd))
	}
	bodies := []string{body, body, envelope(changed), envelope(changed), body, envelope(large), envelope(large)}
	api := newFakeAPI(t, serve(bodies...))
	c := newTestClient(t, api.url(), nil)
	for i, b := range bodies {
		got := &eventSink{}
		if err := c.fetchDay(context.Background(), got); err != nil {
			t.Fatal(err)
		}
		want := fullParse(t, b)
		if !reflect.DeepEqual(got.events, want.events) || !reflect.DeepEqual(got.meetings, want.meetings) ||
			!reflect.DeepEqual(got.raws, want.raws) {
			t.Errorf("fetch %d:\n got  %v\n     %+v\n     %q\n want %v\n     %+v\n     %q", i+1,
				got.events, got.meetings, got.raws, want.events, want.meetings, want.raws)
		}
	}
	// The memo holds the valid records of the last fetch only.
	m := c.decoders.take().memo
	if want := len(large)/2 + 5; len(m.entries) != want || len(m.answers) != 0 {
		t.Errorf("memo after the last fetch: %d records, %d answers; want %d records, no answer", len(m.entries), len(m.answers), want)
	}
}

// TestSameAnswerIsReplayed: an answer that came before, byte for byte, is
// not decoded again: what it handed over is handed over again, each
// meeting filtered by the window of this fetch.
func TestSameAnswerIsReplayed(t *testing.T) {
	body := envelope(memoRecords())
	api := newFakeAPI(t, serve(body))
	c := newTestClient(t, api.url(), nil)
	if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
		t.Fatal(err)
	}
	d := c.decoders.take()
	if len(d.memo.answers) != 1 {
		t.Fatalf("%d answers kept, want 1", len(d.memo.answers))
	}
	for _, a := range d.memo.answers {
		for i := range a.items {
			a.items[i].m.Host = "replayed"
		}
	}
	c.decoders.give(d)
	got := &eventSink{}
	// A later window: "plain" (11:00) is out, the others are in.
	if err := c.Fetch(context.Background(), mustTime("2026-11-20T11:01:00Z"), mustTime("2026-11-20T12:00:00Z"), got); err != nil {
		t.Fatal(err)
	}
	want := &eventSink{}
	dec := newDecoder(time.UTC, time.Hour)
	if _, err := dec.decode(strings.NewReader(body), mustTime("2026-11-20T11:01:00Z"), mustTime("2026-11-20T12:00:00Z"), want); err != nil {
		t.Fatal(err)
	}
	want.CommitPage()
	if !reflect.DeepEqual(got.events, want.events) || !reflect.DeepEqual(got.raws, want.raws) {
		t.Errorf("replayed %v %q, decoding gives %v %q", got.events, got.raws, want.events, want.raws)
	}
	for _, m := range got.meetings {
		if m.Host != "replayed" {
			t.Errorf("meeting %s decoded again", m.UUID)
		}
	}
}

// TestMemoHitsAreNotParsed: the second poll of the same records, in
// another answer, finds every valid record in the memo.
func TestMemoHitsAreNotParsed(t *testing.T) {
	var records []string
	for i := range 50 {
		records = append(records, meetingRecord(strings.Repeat("u", i+1), dayEnd))
	}
	api := newFakeAPI(t, serve(envelope(records), envelope(records, `"page_count": 1`)))
	c := newTestClient(t, api.url(), nil)
	if err := c.fetchDay(context.Background(), &eventSink{}); err != nil {
		t.Fatal(err)
	}
	d := c.decoders.take()
	for _, e := range d.memo.entries {
		e.m.Host = "from the memo"
	}
	c.decoders.give(d)
	sink := &eventSink{}
	if err := c.fetchDay(context.Background(), sink); err != nil {
		t.Fatal(err)
	}
	for _, got := range sink.meetings {
		if got.Host != "from the memo" {
			t.Fatalf("meeting %s parsed again", got.UUID)
		}
	}
	if len(sink.meetings) != 50 {
		t.Errorf("%d meetings, want 50", len(sink.meetings))
	}
}

// TestMemoBounded: the memo stops growing at maxMemoBytes.
func TestMemoBounded(t *testing.T) {
	c := newMemo()
	m := &Meeting{UUID: "u"}
	raw := make([]byte, 1<<20)
	for i := range 100 {
		raw[0] = byte(i)
		c.put(uint64(i), raw, m)
	}
	if c.bytes > maxMemoBytes || len(c.entries) >= 100 {
		t.Errorf("memo of %d entries, %d bytes; the bound is %d bytes", len(c.entries), c.bytes, maxMemoBytes)
	}
}

// TestFreshFromPlacesEqualsSeenSet: an answer replayed at the place in its
// request period where it was read before (after the same answers) brings
// the Fresh it brought then, without a seen set; through random periods of
// pages (the same as before, reordered, repeated as by an API ignoring
// page_number, new ones, some failing before their last byte and read
// again) Fresh is what a set of the period's elements gives.
func TestFreshFromPlacesEqualsSeenSet(t *testing.T) {
	var records []string
	for i := range 60 {
		records = append(records, meetingRecord(fmt.Sprint("u", i), dayEnd))
	}
	pool := make([][]int, 8) // pages, as indexes in records
	for i := range pool {
		for j := range 5 {
			pool[i] = append(pool[i], (i*4+j)%len(records)) // neighbours share one record
		}
	}
	body := func(page []int) string {
		var rs []string
		for _, i := range page {
			rs = append(rs, records[i])
		}
		return envelope(rs)
	}
	dec := newDecoder(time.UTC, time.Hour)
	dec.seen, dec.memo = map[uint64]bool{}, newMemo()
	dec.seed = dec.memo.seed
	rng := rand.New(rand.NewPCG(9, 10))
	var last []int // the last period's pages, by index in pool
	lazyPeriods := 0
	for fetch := range 300 {
		dec.memo.begin()
		pages := slices.Clone(last)
		switch r := rng.IntN(6); {
		case r == 0 || len(pages) == 0: // new
			pages = nil
			for range 1 + rng.IntN(5) {
				pages = append(pages, rng.IntN(len(pool)))
			}
		case r == 1:
			rng.Shuffle(len(pages), func(i, j int) { pages[i], pages[j] = pages[j], pages[i] })
		case r == 2:
			pages = append(pages, pages[rng.IntN(len(pages))])
		case r == 3:
			pages = pages[1:]
		}
		dec.newPeriod()
		seen := map[int]bool{}
		for k, p := range pages {
			if rng.IntN(12) == 0 { // all its records, then no end
				b := body(pool[p])
				if _, err := dec.decode(strings.NewReader(b[:len(b)-2]), time.Time{}, time.Time{}, &countSink{}); err == nil {
					t.Fatalf("fetch %d page %d: a truncated answer decoded", fetch, k)
				}
			}
			env, err := dec.decode(strings.NewReader(body(pool[p])), time.Time{}, time.Time{}, &countSink{})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, i := range pool[p] {
				if !seen[i] {
					seen[i] = true
					want++
				}
			}
			if env.Fresh != want {
				t.Fatalf("fetch %d, pages %v, page %d: Fresh %d, want %d", fetch, pages, k, env.Fresh, want)
			}
		}
		if dec.lazy {
			lazyPeriods++
		}
		dec.memo.end()
		last = pages
	}
	if lazyPeriods < 40 {
		t.Errorf("only %d periods without a seen set", lazyPeriods)
	}
}
