package store

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Bounds of a plausible state. A state file is only written by this
// exporter, so anything outside them was damaged or tampered with, even
// under a valid checksum.
const (
	// minUnix and maxUnix are years 1 and 9999: times outside them mean a
	// damaged file. (Year 1 is in range: older releases stored what a
	// hostile API sent.)
	minUnix = -62135596800
	maxUnix = 253402300799
	// maxInvalidReasons bounds the reasons of umeeting_records_invalid_total.
	maxInvalidReasons = 64
)

// invalidReason is the shape of a reason label value.
var invalidReason = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// validate checks what a decoded state must satisfy before it is used: label
// values are valid UTF-8 (client_golang panics on anything else), times are
// plausible, and numbers agree with each other. The first violation is
// returned; the caller sets such a state aside like a corrupt one.
func (st *state) validate() error {
	if st.CountedThrough < 0 || st.CountedThrough > maxUnix {
		return fmt.Errorf("counted-through time %d out of range", st.CountedThrough)
	}
	for id, m := range st.Meetings {
		switch {
		case id == "":
			return fmt.Errorf("meeting without uuid")
		case checkUnix("meeting start", m.Start) != nil || checkUnix("meeting end", m.End) != nil:
			return fmt.Errorf("meeting %q: times %d..%d out of range", id, m.Start, m.End)
		case m.End < m.Start:
			return fmt.Errorf("meeting %q ends before it starts", id)
		}
	}
	for k, c := range st.Series {
		if err := checkLabels("series", k.Email, k.UserType); err != nil {
			return err
		}
		for i, f := range c.Features {
			if f > c.Meetings {
				return fmt.Errorf("series %q: feature %d counts %d meetings of %d", k.Email, i, f, c.Meetings)
			}
		}
	}
	for ut, h := range st.Hists {
		if err := checkLabels("histogram", ut); err != nil {
			return err
		}
		if err := checkUnix("histogram's publication time", h.Since); err != nil {
			return err
		}
		if h.Duration == nil || h.Participants == nil ||
			len(h.Duration.Buckets) != len(DurationBuckets)+1 || len(h.Participants.Buckets) != len(ParticipantBuckets)+1 {
			return fmt.Errorf("histogram %q: buckets missing or not this release's", ut)
		}
		for _, hist := range []*Histogram{h.Duration, h.Participants} {
			var n uint64
			for _, b := range hist.Buckets {
				n += b
			}
			if n != hist.Count {
				return fmt.Errorf("histogram %q: buckets hold %d observations, count says %d", ut, n, hist.Count)
			}
		}
	}
	for email, h := range st.Hosts {
		if err := checkLabels("host", email, h.Host, h.UserType); err != nil {
			return err
		}
		if err := checkUnix("host's latest meeting", h.LastEnd); err != nil {
			return err
		}
	}
	for _, gs := range []map[string]*group{st.Groups.Departments, st.Groups.CostCenters} {
		for name, g := range gs {
			if err := checkLabels("department or cost centre", name); err != nil {
				return err
			}
			if err := checkGroup(name, g); err != nil {
				return err
			}
		}
	}
	if len(st.Invalid) > maxInvalidReasons {
		return fmt.Errorf("%d invalid-record reasons, at most %d expected", len(st.Invalid), maxInvalidReasons)
	}
	for r := range st.Invalid {
		if !invalidReason.MatchString(r) {
			return fmt.Errorf("invalid-record reason %q is not a reason name", r)
		}
	}
	for _, t := range st.InvalidSeen {
		if err := checkUnix("invalid record's first sighting", t); err != nil {
			return err
		}
	}
	return nil
}

// checkGroup checks that a group's counters agree: features within
// meetings, and the part not yet published (Held) within the total, since
// the published value is their difference and must not wrap.
func checkGroup(name string, g *group) error {
	for _, c := range []*GroupCounters{&g.Total, &g.Held} {
		for i, f := range c.Features {
			if f > c.Meetings {
				return fmt.Errorf("group %q: feature %d counts %d meetings of %d", name, i, f, c.Meetings)
			}
		}
	}
	t, h := &g.Total, &g.Held
	if h.Meetings > t.Meetings || h.Seconds > t.Seconds || h.Participants > t.Participants ||
		h.ParticipantSeconds > t.ParticipantSeconds || h.CostMicros > t.CostMicros {
		return fmt.Errorf("group %q: unpublished counts exceed the total", name)
	}
	for i := range h.Features {
		if h.Features[i] > t.Features[i] {
			return fmt.Errorf("group %q: unpublished counts exceed the total", name)
		}
	}
	return nil
}

func checkUnix(what string, t int64) error {
	if t < minUnix || t > maxUnix {
		return fmt.Errorf("%s %d out of range", what, t)
	}
	return nil
}

// checkLabels checks values that become label values.
func checkLabels(what string, values ...string) error {
	for _, v := range values {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s label %q is not valid UTF-8", what, v)
		}
	}
	return nil
}
