package simulator

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Periods used throughout: the working day of t0, and a 3-week window.
var (
	today   = day(t0)
	weekAgo = day(t0.Add(-7 * 24 * time.Hour))
	weeks3  = day(t0.Add(-21 * 24 * time.Hour))
)

func TestDeterminism(t *testing.T) {
	clock := newClock(t0)
	_, a := serve(t, Options{Seed: 42, Now: clock.Now})
	_, b := serve(t, Options{Seed: 42, Now: clock.Now})
	_, c := serve(t, Options{Seed: 43, Now: clock.Now})
	v := params(weekAgo, today, "page_size", "100", "page_number", "3")
	ra, rb, rc := post(t, a, v), post(t, b, v), post(t, c, v)
	if len(ok(t, ra).Data) != 100 {
		t.Fatalf("want a full page, got %d records", len(ra.Env.Data))
	}
	if !bytes.Equal(ra.Body, rb.Body) {
		t.Error("same seed, different answers")
	}
	if bytes.Equal(ra.Body, rc.Body) {
		t.Error("different seeds, same answer")
	}
	// Asking again (from the cache) gives the same bytes.
	if again := post(t, a, v); !bytes.Equal(again.Body, ra.Body) {
		t.Error("second identical request answered differently")
	}
}

// TestOptionsKeepMeetings: rates and paging change the listing, never
// which meetings exist.
func TestOptionsKeepMeetings(t *testing.T) {
	clock := newClock(t0)
	base := New(Options{Seed: 5, Now: clock.Now}).Truth(time.Time{}, t0)
	other := New(Options{Seed: 5, Now: clock.Now, DuplicateRate: -1, InvalidRate: 0.3, DisablePaging: true}).Truth(time.Time{}, t0)
	sameMeetings(t, base, other)
}

func TestPagingConsistency(t *testing.T) {
	clock := newClock(t0)
	_, paged := serve(t, Options{Seed: 9, Now: clock.Now})
	_, whole := serve(t, Options{Seed: 9, Now: clock.Now, DisablePaging: true})
	for _, c := range []struct {
		from, to string
		size     int
	}{{weekAgo, today, 100}, {today, today, 7}, {weeks3, weekAgo, 30}} {
		env := ok(t, post(t, whole, params(c.from, c.to, "page_size", "5")))
		if env.PageCount != nil || env.PageNumber != nil || env.PageSize != nil || env.TotalRecords != nil {
			t.Errorf("unpaged answer has paging fields: %.200s", post(t, whole, params(c.from, c.to)).Body)
		}
		pages := fetchAll(t, paged, c.from, c.to, c.size)
		if len(pages) != len(env.Data) || len(pages) < 10 {
			t.Fatalf("%s..%s by %d: %d records paged, %d unpaged", c.from, c.to, c.size, len(pages), len(env.Data))
		}
		for i := range pages {
			if !bytes.Equal(pages[i], env.Data[i]) {
				t.Fatalf("record %d differs:\n%s\n%s", i, pages[i], env.Data[i])
			}
		}
		first := ok(t, post(t, paged, params(c.from, c.to, "page_size", strconv.Itoa(c.size))))
		if *first.TotalRecords != len(pages) || *first.PageCount != (len(pages)+c.size-1)/c.size || *first.PageNumber != 1 {
			t.Errorf("paging fields: total %d pages %d number %d for %d records",
				*first.TotalRecords, *first.PageCount, *first.PageNumber, len(pages))
		}
	}
}

func TestPageSize(t *testing.T) {
	_, api := serve(t, Options{Seed: 1, Now: newClock(t0).Now})
	for _, c := range []struct {
		size, page string
		want, n    int
	}{
		{"", "", 30, 30}, {"1000", "1", 100, 100}, {"abc", "1", 30, 30}, {"-5", "1", 30, 30},
		{"10", "2", 10, 10}, {"10", "100000", 10, 0}, {"100", "0", 100, 100},
	} {
		env := ok(t, post(t, api, params(weekAgo, today, "page_size", c.size, "page_number", c.page)))
		if *env.PageSize != c.want || len(env.Data) != c.n {
			t.Errorf("page_size=%q page_number=%q: page_size %d with %d records, want %d with %d",
				c.size, c.page, *env.PageSize, len(env.Data), c.want, c.n)
		}
	}
}

func TestMonthCap(t *testing.T) {
	clock := newClock(t0)
	_, api := serve(t, Options{Seed: 2, Now: clock.Now, DisablePaging: true, HistoryStart: t0.AddDate(0, -4, 0)})
	// A month exactly (to = from + 1 month) is served whole; anything
	// longer is its last month.
	capped := ok(t, post(t, api, params("2024-02-20", "2024-03-20"))).Data
	for _, from := range []string{"2023-12-01", "2024-02-19"} {
		long := ok(t, post(t, api, params(from, "2024-03-20"))).Data
		if len(long) == 0 || len(long) != len(capped) {
			t.Fatalf("%s..2024-03-20: %d records, its last month: %d", from, len(long), len(capped))
		}
		for i := range long {
			if !bytes.Equal(long[i], capped[i]) {
				t.Fatalf("%s..: record %d differs", from, i)
			}
		}
	}
	if shorter := ok(t, post(t, api, params("2024-02-21", "2024-03-20"))).Data; len(shorter) >= len(capped) {
		t.Errorf("a day less than a month: %d records, want fewer than %d", len(shorter), len(capped))
	}
}

func TestDateFiltering(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{Seed: 4, Now: clock.Now, DisablePaging: true})
	// 00:30 on 2 March in Beijing is still 1 March in UTC.
	late := meetingAt("late-uuid", time.Date(2024, 3, 1, 16, 0, 0, 0, time.UTC), 30*time.Minute)
	early := meetingAt("early-uuid", time.Date(2024, 3, 1, 15, 30, 0, 0, time.UTC), 29*time.Minute+59*time.Second)
	s.Add(late, early)
	listed := func(from, to string) map[string]bool {
		got := make(map[string]bool)
		for _, raw := range ok(t, post(t, api, params(from, to))).Data {
			var r record
			if json.Unmarshal(raw, &r) == nil && r.UUID != nil {
				got[*r.UUID] = true
			}
		}
		return got
	}
	for _, c := range []struct {
		from, to    string
		late, early bool
	}{
		{"2024-03-02", "2024-03-02", true, false},
		{"2024-03-01", "2024-03-01", false, true},
		{"2024-03-01", "2024-03-02", true, true},
		{"2024-03-03", "2024-03-02", false, false},
	} {
		got := listed(c.from, c.to)
		if got["late-uuid"] != c.late || got["early-uuid"] != c.early {
			t.Errorf("%s..%s: late %v early %v, want %v %v", c.from, c.to, got["late-uuid"], got["early-uuid"], c.late, c.early)
		}
	}
	if env := ok(t, post(t, api, params(today, weekAgo))); len(env.Data) != 0 {
		t.Errorf("to before from: %d records", len(env.Data))
	}
	// Every generated record ends on an asked day, in Beijing.
	env := ok(t, post(t, api, params(weekAgo, day(t0.Add(-3*24*time.Hour)))))
	for _, raw := range env.Data {
		m, reason := validate(raw)
		if reason != "" {
			continue
		}
		if d := day(m.End); d < weekAgo || d > day(t0.Add(-3*24*time.Hour)) {
			t.Fatalf("record ending %s (%s in Beijing) listed for %s..", m.End, d, weekAgo)
		}
	}
}

// meetingAt is a valid meeting for Add.
func meetingAt(uuid string, start time.Time, length time.Duration) umeeting.Meeting {
	return umeeting.Meeting{
		UUID: uuid, ID: 1376669196, Host: "test03", Email: "test03@example.com", UserType: "Corp",
		Start: start, End: start.Add(length), Participants: 2, Features: umeeting.FeatureVoIP,
	}
}

func TestRequestErrors(t *testing.T) {
	const guess = "s3cr3t-guess"
	_, api := serve(t, Options{Seed: 1, Now: newClock(t0).Now})
	for _, c := range []struct {
		name   string
		set    []string
		status int
	}{
		{"wrong key", []string{"api_key", "nope"}, 401},
		{"wrong secret", []string{"api_secret", guess}, 401},
		{"no credentials", []string{"api_key", "", "api_secret", ""}, 401},
		{"no from", []string{"from", ""}, 400},
		{"bad to", []string{"to", "2024/03/20"}, 400},
		{"bad from", []string{"from", guess}, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				a := call(t, method, api, params(weekAgo, today, c.set...))
				if a.Code != http.StatusOK || a.Env.Status == nil || *a.Env.Status != c.status || a.Env.Message == "" || a.Env.Data != nil {
					t.Errorf("%s: want HTTP 200 with status %d, got HTTP %d: %s", method, c.status, a.Code, a.Body)
				}
				if bytes.Contains(a.Body, []byte(guess)) || bytes.Contains(a.Body, []byte("demo-secret")) {
					t.Errorf("%s: answer echoes a secret: %s", method, a.Body)
				}
			}
		})
	}
	if a := call(t, http.MethodPut, api, params(weekAgo, today)); a.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: HTTP %d", a.Code)
	}
	if g, p := call(t, http.MethodGet, api, params(weekAgo, today)), post(t, api, params(weekAgo, today)); !bytes.Equal(g.Body, p.Body) {
		t.Error("GET and POST answer differently")
	}
	custom, customAPI := serve(t, Options{APIKey: "k", APISecret: "s", NoGenerated: true})
	if a := post(t, customAPI, params(today, today)); *a.Env.Status != 401 {
		t.Errorf("default credentials accepted by a simulator with its own: %s", a.Body)
	}
	if env := ok(t, post(t, customAPI, params(today, today, "api_key", "k", "api_secret", "s"))); env.Data == nil {
		t.Error("no data array")
	}
	if custom.Requests() != 2 {
		t.Errorf("Requests() = %d, want 2", custom.Requests())
	}
}

func TestDuplicatesAndInvalid(t *testing.T) {
	for _, c := range []struct {
		name          string
		dup, inv      float64
		wantDup, wInv float64
	}{
		{"default", 0, 0, 0.02, 0.005},
		{"high", 0.1, 0.05, 0.1, 0.05},
		{"none", -1, -1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, api := serve(t, Options{Seed: 11, Now: newClock(t0).Now, DisablePaging: true, DuplicateRate: c.dup, InvalidRate: c.inv})
			recs := ok(t, post(t, api, params(weeks3, today))).Data
			valid, invalid := distinctValid(t, recs)
			nInvalid := 0
			for _, n := range invalid {
				nInvalid += n
			}
			dups := len(recs) - len(valid) - nInvalid
			dupShare, invShare := float64(dups)/float64(len(valid)), float64(nInvalid)/float64(len(valid))
			t.Logf("%d records: %d meetings, %d duplicates (%.4f), invalid %v (%.4f)", len(recs), len(valid), dups, dupShare, invalid, invShare)
			if math.Abs(dupShare-c.wantDup) > c.wantDup/3+0.001 || math.Abs(invShare-c.wInv) > c.wInv/2+0.001 {
				t.Errorf("duplicate share %.4f (want %.3f), invalid share %.4f (want %.3f)", dupShare, c.wantDup, invShare, c.wInv)
			}
			if c.wInv >= 0.05 {
				for _, reason := range []string{umeeting.ReasonMissingUUID, umeeting.ReasonBadEndTime, umeeting.ReasonEndBeforeStart,
					umeeting.ReasonBadParticipants, umeeting.ReasonMalformed} {
					if invalid[reason] == 0 {
						t.Errorf("no invalid record of kind %s", reason)
					}
				}
			}
		})
	}
}

// TestTruthMatchesListing: Truth is exactly the distinct valid records of
// a query covering the whole history.
func TestTruthMatchesListing(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{Seed: 6, Now: clock.Now, HistoryStart: t0.Add(-25 * 24 * time.Hour)})
	s.Add(meetingAt("added-1", t0.Add(-5*time.Hour), time.Hour), meetingAt("added-future", t0.Add(-time.Minute), time.Hour))
	valid, _ := distinctValid(t, fetchAll(t, api, day(t0.Add(-27*24*time.Hour)), day(t0.Add(24*time.Hour)), 100))
	truth := s.Truth(time.Time{}, t0.Add(48*time.Hour))
	if len(truth) < 5000 {
		t.Fatalf("only %d meetings in 25 days", len(truth))
	}
	sameMeetings(t, truth, valid)
	if _, ok := byUUID(truth)["added-1"]; !ok {
		t.Error("added meeting not in Truth")
	}
	if _, ok := byUUID(truth)["added-future"]; ok {
		t.Error("unfinished meeting in Truth")
	}
	if !slices.IsSortedFunc(truth, func(a, b umeeting.Meeting) int { return a.Start.Compare(b.Start) }) {
		t.Error("Truth not ordered by start")
	}
	// A narrower window is the matching part.
	from, to := t0.Add(-3*24*time.Hour), t0.Add(-2*24*time.Hour)
	var want []umeeting.Meeting
	for _, m := range truth {
		if !m.End.Before(from) && !m.End.After(to) {
			want = append(want, m)
		}
	}
	sameMeetings(t, want, s.Truth(from, to))
	for _, m := range truth {
		if m.Host != strings.TrimSpace(m.Host) || m.Email != strings.ToLower(m.Email) || m.Start.Location() != time.UTC {
			t.Fatalf("not normalised: %+v", m)
		}
	}
}

// TestLiveClock: new meetings keep ending and being listed; what was
// listed stays listed, byte for byte.
func TestLiveClock(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{Seed: 8, Now: clock.Now, DisablePaging: true})
	before := ok(t, post(t, api, params(today, today))).Data
	truthBefore := len(s.Truth(t0.Add(-24*time.Hour), t0))
	clock.Set(t0.Add(30 * time.Minute))
	after := ok(t, post(t, api, params(today, today))).Data
	if len(after) <= len(before) {
		t.Fatalf("30 minutes of a working morning listed nothing new: %d then %d", len(before), len(after))
	}
	later := make(map[string]bool, len(after))
	for _, r := range after {
		later[string(r)] = true
	}
	for _, r := range before {
		if !later[string(r)] {
			t.Fatalf("record changed or vanished: %s", r)
		}
	}
	if n := len(s.Truth(t0.Add(-24*time.Hour), t0.Add(30*time.Minute))); n <= truthBefore {
		t.Errorf("Truth did not grow: %d then %d", truthBefore, n)
	}
	// A fixed history stops at HistoryEnd.
	fixed := New(Options{Seed: 8, Now: clock.Now, HistoryEnd: t0})
	for _, m := range fixed.Truth(time.Time{}, t0.Add(time.Hour)) {
		if m.End.After(t0) {
			t.Fatalf("meeting ends after HistoryEnd: %+v", m)
		}
	}
}

func TestListingDelay(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{Seed: 12, Now: clock.Now, DisablePaging: true})
	days, _ := s.snapshot(s.dayOf(t0)-1, s.dayOf(t0), t0)
	var m *meeting
	for _, d := range days {
		for i := range d {
			if c := &d[i]; c.delay >= 30*time.Second && c.end.Before(t0) {
				m = c
			}
		}
	}
	if m == nil {
		t.Fatal("no meeting with a listing delay")
	}
	listed := func(at time.Time) bool {
		clock.Set(at)
		for _, raw := range ok(t, post(t, api, params(day(m.end), day(m.end)))).Data {
			if bytes.Contains(raw, []byte(`"uuid":"`+m.uuid+`"`)) {
				return true
			}
		}
		return false
	}
	if listed(m.end.Add(m.delay - time.Second)) {
		t.Errorf("meeting listed %s after its end, before its delay %s", m.delay-time.Second, m.delay)
	}
	if len(s.Truth(m.end, m.end)) != 0 {
		t.Error("Truth has a meeting not yet listed")
	}
	if !listed(m.end.Add(m.delay)) {
		t.Errorf("meeting not listed at its delay %s", m.delay)
	}
}

func TestAdd(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{NoGenerated: true, Now: clock.Now, DisablePaging: true})
	m := umeeting.Meeting{
		UUID: "jny6Sttx8NitKXw==", ID: 1376669196, Host: " 张伟 ", Email: "Wei.Zhang@Example.com", UserType: "",
		Start: time.Date(2024, 3, 19, 3, 53, 18, 0, time.FixedZone("x", 3600)), End: time.Date(2024, 3, 19, 4, 2, 10, 500, time.FixedZone("x", 3600)),
		Participants: 7, Features: umeeting.FeatureVideo | umeeting.FeatureRecording,
	}
	s.Add(m)
	for i := range 40 {
		s.Add(meetingAt("many-"+strconv.Itoa(i), t0.Add(-time.Duration(i+2)*30*time.Minute), time.Duration(i+1)*5*time.Minute))
	}
	recs := ok(t, post(t, api, params("2024-03-19", "2024-03-20"))).Data
	if len(recs) != 41 {
		t.Fatalf("want 41 meetings, got %d", len(recs))
	}
	var got record
	for _, raw := range recs {
		if bytes.Contains(raw, []byte(m.UUID)) {
			json.Unmarshal(raw, &got)
		}
	}
	if got.Duration != "9分钟" || *got.Start != "2024-03-19T02:53:18Z" || *got.End != "2024-03-19T03:02:10Z" || got.UserType != nil ||
		strings.TrimSpace(got.Host) != "张伟" || !strings.EqualFold(got.Email, "wei.zhang@example.com") || got.Recording != 1 {
		t.Errorf("rendered wrongly: %+v", got)
	}
	truth := s.Truth(time.Time{}, t0)
	if len(truth) != 41 {
		t.Fatalf("Truth has %d meetings, want 41", len(truth))
	}
	want := m
	want.Host, want.Email, want.UserType = "张伟", "wei.zhang@example.com", umeeting.UnknownUserType
	want.Start, want.End = time.Date(2024, 3, 19, 2, 53, 18, 0, time.UTC), time.Date(2024, 3, 19, 3, 2, 10, 0, time.UTC)
	if truth[0] != want {
		t.Errorf("Truth:\n%+v\nwant\n%+v", truth[0], want)
	}
	// The quirks show up across added meetings.
	spaces, mixed := 0, 0
	for _, raw := range recs {
		var r record
		if json.Unmarshal(raw, &r) == nil {
			if strings.HasSuffix(r.Host, " ") {
				spaces++
			}
			if r.Email != strings.ToLower(r.Email) {
				mixed++
			}
		}
	}
	if spaces == 0 || mixed == 0 || spaces == 41 {
		t.Errorf("quirks: %d hosts with a trailing space, %d mixed-case e-mails of 41", spaces, mixed)
	}
}
