package store

import (
	"cmp"
	"slices"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Snapshot is an immutable copy of the numbers to expose, taken at At.
type Snapshot struct {
	At time.Time
	// Series are the exposed series, with the values to show.
	Series           []Series
	Histograms       map[string]Histograms
	Hosts            []HostSnapshot
	ActiveHosts      map[string]map[string]int // window → user_type → hosts
	PeakMeetings     int
	PeakParticipants int
	Invalid          map[string]uint64
	Remembered       int
	// Folded counts meetings whose user_type was folded into OtherUserType.
	Folded uint64
	// Departments and CostCenters are the counters by directory group,
	// sorted by name; empty without a directory.
	Departments, CostCenters []GroupSeries
}

// Series is one exposed counter series.
type Series struct {
	SeriesKey
	Counters
	// Created is when the series was first published at zero; zero for
	// series whose history starts in the baseline.
	Created time.Time
}

// HostSnapshot is one host's latest meeting.
type HostSnapshot struct {
	Email string
	Host
}

// ActiveWindows are the windows of umeeting_active_hosts.
var ActiveWindows = []struct {
	Name string
	D    time.Duration
}{{"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// Snapshot copies the state's numbers; gauges are computed at now.
func (s *Store) Snapshot(now time.Time) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := &Snapshot{
		At:         now,
		Histograms: make(map[string]Histograms, len(s.st.Hists)),
		Invalid:    make(map[string]uint64, len(umeeting.InvalidReasons)),
		Remembered: len(s.st.Meetings),
		Folded:     s.st.Folded,
	}
	snap.Series, snap.Hosts = s.snapshotSeries()
	for ut, h := range s.st.Hists {
		if h.New {
			snap.Histograms[ut] = Histograms{Duration: newHistogram(DurationBuckets), Participants: newHistogram(ParticipantBuckets)}
			continue
		}
		snap.Histograms[ut] = Histograms{Duration: h.Duration.clone(), Participants: h.Participants.clone()}
	}
	snap.ActiveHosts = s.activeHosts(now)
	snap.PeakMeetings, snap.PeakParticipants = s.peaks(now)
	for _, r := range umeeting.InvalidReasons {
		snap.Invalid[r] = s.st.Invalid[r]
	}
	for r, n := range s.st.Invalid {
		snap.Invalid[r] = n
	}
	s.snapshotGroups(snap)
	return snap
}

// Gauges computes the Snapshot's gauges that move with time alone, at now:
// ActiveHosts, PeakMeetings and PeakParticipants.
func (s *Store) Gauges(now time.Time) (activeHosts map[string]map[string]int, peakMeetings, peakParticipants int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	peakMeetings, peakParticipants = s.peaks(now)
	return s.activeHosts(now), peakMeetings, peakParticipants
}

func (h *Histogram) clone() *Histogram {
	c := *h
	c.Buckets = slices.Clone(h.Buckets)
	return &c
}

// WithoutHosts returns a copy of snap as a policy without per-host series
// would show it: every series merged into the series without host labels
// of its user_type, no host admitted.
func (snap *Snapshot) WithoutHosts() *Snapshot {
	c := *snap
	merged := map[string]*Series{}
	c.Series = nil
	for _, s := range snap.Series {
		m := merged[s.UserType]
		if m == nil {
			m = &Series{SeriesKey: SeriesKey{UserType: s.UserType}}
			merged[s.UserType] = m
		}
		m.merge(&s.Counters)
	}
	for _, m := range merged {
		c.Series = append(c.Series, *m)
	}
	slices.SortFunc(c.Series, func(a, b Series) int { return cmp.Compare(a.UserType, b.UserType) })
	c.Hosts = slices.Clone(snap.Hosts)
	for i := range c.Hosts {
		c.Hosts[i].Admitted = false
	}
	return &c
}

// snapshotSeries returns the exposed series sorted by e-mail and
// user_type, with the values to show, and the hosts sorted by e-mail.
func (s *Store) snapshotSeries() ([]Series, []HostSnapshot) {
	st := s.st
	series := make([]Series, 0, len(st.Series))
	for k, x := range st.Series {
		if !x.Exposed {
			continue
		}
		c := x.Counters
		if x.Held != nil {
			c = *x.Held
		}
		series = append(series, Series{SeriesKey: k, Counters: c, Created: unixTime(x.Created)})
	}
	slices.SortFunc(series, func(a, b Series) int {
		return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.UserType, b.UserType))
	})
	hosts := make([]HostSnapshot, 0, len(st.Hosts))
	for email, h := range st.Hosts {
		hosts = append(hosts, HostSnapshot{Email: email, Host: *h})
	}
	slices.SortFunc(hosts, func(a, b HostSnapshot) int { return cmp.Compare(a.Email, b.Email) })
	return series, hosts
}
