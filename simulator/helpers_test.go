package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/fakeclock"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// t0 is a Wednesday, 10:00 in Beijing: the middle of a working day.
var t0 = time.Date(2024, 3, 20, 2, 0, 0, 0, time.UTC)

var beijing = shanghai()

// fakeClock is a settable clock for Options.Now.
type fakeClock = fakeclock.Clock

var newClock = fakeclock.New

// serve starts a simulator behind an httptest server on 127.0.0.1 and
// returns it with the hisMeeting URL.
func serve(t testing.TB, opts Options) (*Simulator, string) {
	t.Helper()
	s := New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + APIPath
}

// envelope is the API answer, every field optional so tests see absence.
type envelope struct {
	Status       *int              `json:"status"`
	Message      string            `json:"message"`
	PageCount    *int              `json:"page_count"`
	PageNumber   *int              `json:"page_number"`
	PageSize     *int              `json:"page_size"`
	TotalRecords *int              `json:"total_records"`
	Data         []json.RawMessage `json:"data"`
	Error        *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// answer is one HTTP answer of the API.
type answer struct {
	Code   int
	Header http.Header
	Body   []byte
	Env    envelope
	JSONok bool // the body decoded as an envelope
}

// params are valid credentials and dates plus extra name, value pairs.
func params(from, to string, extra ...string) url.Values {
	v := url.Values{"api_key": {"demo-key"}, "api_secret": {"demo-secret"}, "from": {from}, "to": {to}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// call sends a POST form (or GET with a query) and reads the answer.
func call(t testing.TB, method, apiURL string, v url.Values) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequestWithContext(ctx, method, apiURL+"?"+v.Encode(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, apiURL, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, apiURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	a := answer{Code: resp.StatusCode, Header: resp.Header, Body: body}
	a.JSONok = json.Unmarshal(body, &a.Env) == nil
	return a
}

func post(t testing.TB, apiURL string, v url.Values) answer {
	t.Helper()
	return call(t, http.MethodPost, apiURL, v)
}

// ok asserts a successful envelope and returns it.
func ok(t testing.TB, a answer) envelope {
	t.Helper()
	if a.Code != http.StatusOK || !a.JSONok || a.Env.Status == nil || *a.Env.Status != 200 {
		t.Fatalf("want a 200 envelope, got HTTP %d: %.300s", a.Code, a.Body)
	}
	return a.Env
}

// fetchAll reads every page of a period and returns the records in order.
func fetchAll(t testing.TB, apiURL, from, to string, pageSize int) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	for page := 1; page <= 10000; page++ {
		env := ok(t, post(t, apiURL, params(from, to, "page_size", strconv.Itoa(pageSize), "page_number", strconv.Itoa(page))))
		all = append(all, env.Data...)
		if env.PageCount == nil || page >= *env.PageCount {
			return all
		}
	}
	t.Fatal("more than 10000 pages")
	return nil
}

// record is the vendor's record, pointers where absence matters.
type record struct {
	UUID         *string `json:"uuid"`
	ID           int64   `json:"id"`
	Host         string  `json:"host"`
	Email        string  `json:"email"`
	UserType     *string `json:"user_type"`
	Start        *string `json:"start_time"`
	End          *string `json:"end_time"`
	Duration     string  `json:"duration"`
	Participants *int    `json:"participants"`
	PSTN         bool    `json:"has_pstn"`
	VoIP         bool    `json:"has_voip"`
	ThirdParty   bool    `json:"has_3rd_party_audio"`
	Video        bool    `json:"has_video"`
	ScreenShare  bool    `json:"has_screen_share"`
	Recording    int     `json:"recording"`
}

// validate is an independent client's reading of a record: the normalised
// meeting, or the reason it is invalid.
func validate(raw json.RawMessage) (umeeting.Meeting, string) {
	var r record
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) || json.Unmarshal(raw, &r) != nil {
		return umeeting.Meeting{}, umeeting.ReasonMalformed
	}
	if r.UUID == nil || strings.TrimSpace(*r.UUID) == "" {
		return umeeting.Meeting{}, umeeting.ReasonMissingUUID
	}
	if r.End == nil {
		return umeeting.Meeting{}, umeeting.ReasonBadEndTime
	}
	end, err := time.Parse(time.RFC3339, *r.End)
	if err != nil {
		return umeeting.Meeting{}, umeeting.ReasonBadEndTime
	}
	if r.Start == nil {
		return umeeting.Meeting{}, umeeting.ReasonNoLength
	}
	start, err := time.Parse(time.RFC3339, *r.Start)
	if err != nil {
		return umeeting.Meeting{}, umeeting.ReasonNoLength
	}
	if end.Before(start) {
		return umeeting.Meeting{}, umeeting.ReasonEndBeforeStart
	}
	if r.Participants == nil || *r.Participants < 0 {
		return umeeting.Meeting{}, umeeting.ReasonBadParticipants
	}
	m := umeeting.Meeting{
		UUID: *r.UUID, ID: r.ID, Host: strings.TrimSpace(r.Host), Email: strings.ToLower(strings.TrimSpace(r.Email)),
		UserType: umeeting.UnknownUserType, Start: start.UTC(), End: end.UTC(), Participants: *r.Participants,
	}
	if r.UserType != nil && strings.TrimSpace(*r.UserType) != "" {
		m.UserType = strings.TrimSpace(*r.UserType)
	}
	for _, f := range []struct {
		on bool
		f  umeeting.Feature
	}{{r.Video, umeeting.FeatureVideo}, {r.ScreenShare, umeeting.FeatureScreenShare}, {r.VoIP, umeeting.FeatureVoIP},
		{r.PSTN, umeeting.FeaturePSTN}, {r.ThirdParty, umeeting.FeatureThirdPartyAudio}, {r.Recording != 0, umeeting.FeatureRecording}} {
		if f.on {
			m.Features |= f.f
		}
	}
	return m, ""
}

// distinctValid is what a correct client keeps of records: each valid
// uuid once, in listing order, and the count of invalid ones by reason.
func distinctValid(t testing.TB, recs []json.RawMessage) ([]umeeting.Meeting, map[string]int) {
	t.Helper()
	seen := make(map[string]umeeting.Meeting)
	var out []umeeting.Meeting
	invalid := make(map[string]int)
	for _, raw := range recs {
		m, reason := validate(raw)
		if reason != "" {
			invalid[reason]++
			continue
		}
		if prev, dup := seen[m.UUID]; dup {
			if prev != m {
				t.Fatalf("uuid %s listed twice with different content:\n%+v\n%+v", m.UUID, prev, m)
			}
			continue
		}
		seen[m.UUID] = m
		out = append(out, m)
	}
	return out, invalid
}

// byUUID indexes meetings by uuid.
func byUUID(ms []umeeting.Meeting) map[string]umeeting.Meeting {
	idx := make(map[string]umeeting.Meeting, len(ms))
	for _, m := range ms {
		idx[m.UUID] = m
	}
	return idx
}

// sameMeetings fails unless want and got hold the same meetings.
func sameMeetings(t testing.TB, want, got []umeeting.Meeting) {
	t.Helper()
	w, g := byUUID(want), byUUID(got)
	if len(w) != len(want) || len(g) != len(got) {
		t.Fatalf("duplicate uuids: want %d/%d, got %d/%d", len(w), len(want), len(g), len(got))
	}
	for id, m := range w {
		if gm, ok := g[id]; !ok {
			t.Errorf("missing %+v", m)
		} else if gm != m {
			t.Errorf("differs:\nwant %+v\ngot  %+v", m, gm)
		}
	}
	for id, m := range g {
		if _, ok := w[id]; !ok {
			t.Errorf("unexpected %+v", m)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// day is the Beijing calendar date of t, as the API wants it.
func day(t time.Time) string { return t.In(beijing).Format(dateLayout) }
