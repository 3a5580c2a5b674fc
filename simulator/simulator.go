// Package simulator imitates the UMeeting hisMeeting history API, quirks
// included: a deterministic company of a few hundred hosts that keeps
// holding meetings on a live clock, paging, the silent one-month cap,
// duplicate and invalid records, late listing, and injectable faults.
// The exporter's --demo mode serves dashboards from it; tests use its
// ground truth (Truth) and its faults.
//
// How busy the company is follows the week in the vendor's zone: working
// hours on working days, a trickle at weekends. A test suite running on a
// Monday evening therefore sees other data than one running on a
// Wednesday morning. Setting UMEETING_TEST_NOW (RFC 3339) makes every
// simulator on the live clock (Options.Now unset), in tests and in the
// exporter's --demo, behave as at that moment of the week: the weekday
// and hour that decide how many meetings start in each real hour are read
// from a pattern clock, shifted so that the moment New runs maps to
// UMEETING_TEST_NOW. Every timestamp the simulator serves stays on the
// real clock, so the exporter's windows, lookback and listing delays
// agree with the simulator's as they do without the variable. Simulators
// given a clock (Options.Now) are deterministic already and ignore it.
package simulator

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// APIPath is where the simulator serves hisMeeting, as the vendor does.
const APIPath = "/umeeting/share/hisMeeting"

// TestNowEnv names the environment variable that sets the moment of the
// week a simulator on the live clock behaves as (see the package comment).
const TestNowEnv = "UMEETING_TEST_NOW"

// Options configure a Simulator. The zero value is a usable live company.
type Options struct {
	Seed          uint64           // same seed → same company and meetings
	Hosts         int              // default 300 (a few hundred hosts)
	APIKey        string           // default "demo-key"
	APISecret     string           // default "demo-secret"
	Now           func() time.Time // live clock; default time.Now
	HistoryStart  time.Time        // no generated meeting ends before this; zero = Now()-60 days at New
	HistoryEnd    time.Time        // no generated meeting ends after this; zero = none (live: new meetings keep ending)
	NoGenerated   bool             // no generated meetings at all: only those added with Add
	DisablePaging bool             // answer everything in one page, without paging fields (the documented shape)
	DuplicateRate float64          // share of records listed twice in an answer (same uuid); default 0.02, negative = 0
	InvalidRate   float64          // share of extra invalid records; default 0.005, negative = 0
}

// maxPageSize is the largest page the API answers; without page_size a
// page holds 30.
const maxPageSize = 100

// maxListingDelay: a generated meeting is listed up to this long after it
// ends (per meeting, deterministic).
const maxListingDelay = 3 * time.Minute

// Simulator is an in-process UMeeting API. It is safe for concurrent use.
type Simulator struct {
	opts      Options
	loc       *time.Location
	now       func() time.Time
	hosts     []host
	histStart time.Time
	histEnd   time.Time     // zero = none
	phase     time.Duration // pattern clock minus real clock (TestNowEnv)

	mu        sync.Mutex
	days      map[int64][]meeting // generated days, bounded by maxCachedDays
	added     []*meeting
	fault     Fault
	faultLeft int // requests left for a counted fault
	htmlHits  int // alternates the two shapes of the html fault

	requests atomic.Int64
	memo     atomic.Pointer[listingMemo] // see listing

	srv *http.Server // set by Start
	ln  net.Listener
}

// New builds a simulator; nothing is generated until a day is asked for.
func New(opts Options) *Simulator {
	if opts.Hosts <= 0 {
		opts.Hosts = 300
	}
	if opts.APIKey == "" {
		opts.APIKey = "demo-key"
	}
	if opts.APISecret == "" {
		opts.APISecret = "demo-secret"
	}
	var phase time.Duration
	if opts.Now == nil {
		opts.Now = time.Now
		phase = testPhase(time.Now())
	}
	opts.DuplicateRate = rateOption(opts.DuplicateRate, 0.02)
	opts.InvalidRate = rateOption(opts.InvalidRate, 0.005)
	s := &Simulator{
		opts:      opts,
		loc:       shanghai(),
		now:       opts.Now,
		histStart: opts.HistoryStart,
		histEnd:   opts.HistoryEnd,
		phase:     phase,
		days:      make(map[int64][]meeting),
	}
	if s.histStart.IsZero() {
		s.histStart = s.now().Add(-60 * 24 * time.Hour)
	}
	if !opts.NoGenerated {
		s.hosts = newCompany(opts.Seed, opts.Hosts)
	}
	return s
}

// testPhase is how far the pattern clock is ahead of now: TestNowEnv minus
// now, or 0 when it is unset. A value that is not RFC 3339 panics, so that a
// test run never goes on at a moment it was not asked for.
func testPhase(now time.Time) time.Duration {
	v := os.Getenv(TestNowEnv)
	if v == "" {
		return 0
	}
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		panic(fmt.Sprintf("simulator: %s=%q is not an RFC 3339 time: %v", TestNowEnv, v, err))
	}
	return at.Sub(now)
}

// rateOption applies the "zero = default, negative = none" rule of the rates.
func rateOption(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return min(v, 1)
}

// shanghai is the vendor's zone; China has had no DST since 1991, so a
// fixed UTC+8 is an exact fallback where the zone database is missing.
func shanghai() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*3600)
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background,
// until Close. It returns the full URL of the hisMeeting endpoint. It is
// called once, before Addr.
func (s *Simulator) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: listening on %s: %w", addr, err)
	}
	s.ln, s.srv = ln, &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // Serve ends with ErrServerClosed on Close.
	return "http://" + ln.Addr().String() + APIPath, nil
}

// Addr is the host:port the simulator listens on.
func (s *Simulator) Addr() string { return s.ln.Addr().String() }

// Close stops the server started by Start, if any, cutting requests in flight.
func (s *Simulator) Close() error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("simulator: closing: %w", err)
	}
	return nil
}

// Requests is the number of API requests served so far (control requests
// not included), faulted or not.
func (s *Simulator) Requests() int { return int(s.requests.Load()) }

// Add lists valid meetings, rendered with the vendor's usual quirks
// (trailing space on host, duration text, mixed-case email). They are
// listed as soon as they have ended, without listing delay, duplicates
// or invalid companions, so tests control exactly what is listed.
func (s *Simulator) Add(ms ...umeeting.Meeting) {
	rendered := make([]*meeting, 0, len(ms))
	for i := range ms {
		rendered = append(rendered, s.renderAdded(&ms[i]))
	}
	s.mu.Lock()
	s.added = append(s.added, rendered...)
	s.mu.Unlock()
}

// renderAdded turns a normalised meeting into the vendor's shape; the
// quirks are chosen by a hash of the uuid, so they are stable.
func (s *Simulator) renderAdded(in *umeeting.Meeting) *meeting {
	h := fnv.New64a()
	h.Write([]byte(in.UUID))
	r := mix64(h.Sum64() ^ s.opts.Seed)
	m := &meeting{
		uuid:         in.UUID,
		id:           in.ID,
		host:         strings.TrimSpace(in.Host),
		email:        strings.ToLower(strings.TrimSpace(in.Email)),
		userType:     strings.TrimSpace(in.UserType),
		start:        in.Start.UTC().Truncate(time.Second),
		end:          in.End.UTC().Truncate(time.Second),
		participants: in.Participants,
		features:     in.Features,
	}
	if m.userType == umeeting.UnknownUserType {
		m.userType = ""
	}
	if r%10 < 6 {
		m.host += " "
	}
	if (r>>8)%10 < 3 {
		m.email = mixedCase(m.email)
	}
	m.duration = durationText(int64(m.end.Sub(m.start)/time.Second), (r>>16)%2 == 0)
	m.endDay = s.dayOf(m.end)
	return m
}

// Truth is the ground truth: the distinct valid meetings (generated and
// added) that are listed at Now() and ended in [endFrom, endTo], in the
// normalised form a correct client produces (host trimmed, e-mail
// lower-cased, times UTC), ordered by start.
func (s *Simulator) Truth(endFrom, endTo time.Time) []umeeting.Meeting {
	now := s.now()
	if endTo.After(now) {
		endTo = now
	}
	if endTo.Before(endFrom) {
		return nil
	}
	days, added := s.snapshot(s.dayOf(endFrom)-1, s.dayOf(endTo), now)
	seen := make(map[string]bool)
	var out []umeeting.Meeting
	keep := func(m *meeting, listedAt time.Time) {
		if m.end.Before(endFrom) || m.end.After(endTo) || listedAt.After(now) || seen[m.uuid] {
			return
		}
		seen[m.uuid] = true
		out = append(out, m.normalised())
	}
	for _, d := range days {
		for i := range d {
			m := &d[i]
			keep(m, m.end.Add(m.delay))
		}
	}
	for _, m := range added {
		keep(m, m.end)
	}
	slices.SortFunc(out, func(a, b umeeting.Meeting) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.UUID, b.UUID)
	})
	return out
}

// TruthSummary aggregates meetings the way the exporter's counters do.
type TruthSummary struct {
	Meetings           int64
	MeetingSeconds     int64
	Participants       int64
	ParticipantSeconds int64
	Hosts              int // distinct e-mails
	Features           map[string]int64
}

// Summarize adds up meetings into a TruthSummary.
func Summarize(ms []umeeting.Meeting) TruthSummary {
	sum := TruthSummary{Features: make(map[string]int64, len(umeeting.AllFeatures))}
	for _, name := range umeeting.FeatureNames {
		sum.Features[name] = 0
	}
	hosts := make(map[string]bool)
	for i := range ms {
		m := &ms[i]
		secs := int64(m.Length() / time.Second)
		sum.Meetings++
		sum.MeetingSeconds += secs
		sum.Participants += int64(m.Participants)
		sum.ParticipantSeconds += secs * int64(m.Participants)
		hosts[m.Email] = true
		for j, f := range umeeting.AllFeatures {
			if m.Features&f != 0 {
				sum.Features[umeeting.FeatureNames[j]]++
			}
		}
	}
	sum.Hosts = len(hosts)
	return sum
}
