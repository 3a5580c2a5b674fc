package simulator

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// meeting is one meeting instance as the simulator lists it.
type meeting struct {
	uuid         string
	id           int64
	host         string // as rendered (may carry a trailing space)
	email        string // as rendered (may be mixed case)
	userType     string // "" = field omitted
	start, end   time.Time
	endDay       int64 // local day of end
	duration     string
	participants int
	features     umeeting.Feature

	delay   time.Duration // listed this long after end
	dup     bool          // listed a second time
	invalid invalidKind   // an invalid companion record is listed too
	invSub  uint8         // variant of the invalid companion
	invUUID string        // uuid of the invalid companion
}

// normalised is the meeting as a correct client hands it on.
func (m *meeting) normalised() umeeting.Meeting {
	ut := strings.TrimSpace(m.userType)
	if ut == "" {
		ut = umeeting.UnknownUserType
	}
	return umeeting.Meeting{
		UUID:         m.uuid,
		ID:           m.id,
		Host:         strings.TrimSpace(m.host),
		Email:        strings.ToLower(strings.TrimSpace(m.email)),
		UserType:     ut,
		Start:        m.start,
		End:          m.end,
		Participants: m.participants,
		Features:     m.features,
	}
}

// invalidKind is how an invalid companion record is broken.
type invalidKind uint8

const (
	invalidNone invalidKind = iota
	invalidMissingUUID
	invalidEndBeforeStart
	invalidBadEndTime
	invalidNegativeParticipants
	invalidNotObject
	invalidKinds = iota - 1
)

// maxCachedDays bounds memory: a long-running demo asks for new days
// forever. The cache is emptied when full; a day is regenerated
// identically when needed again.
const maxCachedDays = 128

// maxMeetingSeconds keeps every meeting shorter than a day, so a day's
// meetings end on that day or the next.
const maxMeetingSeconds = 10 * 3600

// Hour weights of meeting starts, local time: working hours with a lunch
// dip on working days, a flat trickle on weekends.
var (
	workdayHours = [24]float64{0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.2, 0.6, 3, 10, 12, 9, 3, 6, 11, 11, 10, 6, 2.5, 2, 1.5, 1, 0.5, 0.3}
	weekendHours = [24]float64{0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.2, 0.3, 0.8, 1.5, 2.5, 2.5, 1.5, 1.5, 2, 2, 2, 1.5, 1, 1.5, 2, 1.5, 0.8, 0.4}
	// dayFactor scales a host's rate by weekday (Sunday first).
	dayFactor = [7]float64{0.04, 1.0, 1.05, 1.05, 1.0, 0.85, 0.07}
)

// featureRates are the chances of each feature, in umeeting.AllFeatures order.
var featureRates = [...]float64{0.60, 0.40, 0.90, 0.10, 0.02, 0.15}

// dayOf is the local calendar day of t, as days since 1970-01-01.
func (s *Simulator) dayOf(t time.Time) int64 {
	y, m, d := t.In(s.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dayStart is local midnight opening day d.
func (s *Simulator) dayStart(d int64) time.Time {
	y, m, dd := time.Unix(d*86400, 0).UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, s.loc)
}

// snapshot returns the generated days in [from, to] (clamped to the
// history and to the day of now), each sorted by start, and the added
// meetings, for use without the lock: all of them are immutable once made.
func (s *Simulator) snapshot(from, to int64, now time.Time) ([][]meeting, []*meeting) {
	if !s.opts.NoGenerated {
		from = max(from, s.dayOf(s.histStart)-1)
		to = min(to, s.dayOf(now))
		if !s.histEnd.IsZero() {
			to = min(to, s.dayOf(s.histEnd))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var days [][]meeting
	for d := from; d <= to && !s.opts.NoGenerated; d++ {
		ms, ok := s.days[d]
		if !ok {
			if len(s.days) >= maxCachedDays {
				clear(s.days)
			}
			ms = s.generateDay(d)
			s.days[d] = ms
		}
		days = append(days, ms)
	}
	return days, s.added[:len(s.added):len(s.added)]
}

// generateDay makes the meetings that start on local day d. Everything is
// drawn from a PCG seeded by (seed, d), and every meeting takes its draws
// whatever the options, so options never change which meetings exist;
// the history bounds only drop meetings afterwards.
func (s *Simulator) generateDay(d int64) []meeting {
	rng := rand.New(rand.NewPCG(s.opts.Seed, uint64(d)))
	start := s.dayStart(d)
	daySecs := int(s.dayStart(d+1).Sub(start) / time.Second)
	hours, factor := s.dayPattern(start)
	var out []meeting
	idx := 0
	for i := range s.hosts {
		h := &s.hosts[i]
		if !h.activeOn(d) {
			continue
		}
		for range poisson(rng, h.rate*factor) {
			m := s.newMeeting(rng, h, d, idx, start, daySecs, &hours)
			idx++
			if m.end.Before(s.histStart) || (!s.histEnd.IsZero() && m.end.After(s.histEnd)) {
				continue
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b meeting) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return strings.Compare(a.uuid, b.uuid)
	})
	return out
}

// dayPattern is how busy the day opening at start is: the weights of the
// hour meetings start in (hour 0 opens the day) and the factor on each
// host's rate. Each hour follows the weekday and hour it is on the
// pattern clock (real time shifted by s.phase); with no shift, the weights
// are the day's hour table itself and the factor its weekday's.
func (s *Simulator) dayPattern(start time.Time) (hours [24]float64, factor float64) {
	// rel is a weekday's share of a host's meetings per unit of hour weight.
	rel := func(wd time.Weekday) (*[24]float64, float64) {
		tbl := &workdayHours
		if wd == time.Saturday || wd == time.Sunday {
			tbl = &weekendHours
		}
		return tbl, dayFactor[wd] / weightSum(tbl)
	}
	first := start.Add(s.phase + 30*time.Minute).In(s.loc).Weekday()
	firstTbl, firstRel := rel(first)
	for h := range hours {
		at := start.Add(s.phase + time.Duration(h)*time.Hour + 30*time.Minute).In(s.loc)
		tbl, r := rel(at.Weekday())
		hours[h] = tbl[at.Hour()] * (r / firstRel)
	}
	return hours, dayFactor[first] * (weightSum(&hours) / weightSum(firstTbl))
}

func weightSum(w *[24]float64) float64 {
	total := 0.0
	for _, v := range w {
		total += v
	}
	return total
}

// newMeeting draws one meeting of host h on day d.
func (s *Simulator) newMeeting(rng *rand.Rand, h *host, d int64, idx int, dayStart time.Time, daySecs int, hours *[24]float64) meeting {
	hour := pickHour(rng, hours)
	var off int
	if rng.Float64() < 0.45 { // scheduled: on the hour or half hour, people join a bit early or late
		off = hour*3600 + 1800*rng.IntN(2) + int(rng.NormFloat64()*90)
	} else {
		off = hour*3600 + rng.IntN(3600)
	}
	off = min(max(off, 0), daySecs-1)
	st := dayStart.Add(time.Duration(off) * time.Second).UTC()
	secs := meetingSeconds(rng)
	en := st.Add(time.Duration(secs) * time.Second)
	parts := participants(rng)
	var feats umeeting.Feature
	for i, f := range umeeting.AllFeatures {
		rate := featureRates[i]
		if f == umeeting.FeatureRecording && parts >= 50 {
			rate = 0.5 // all-hands and trainings get recorded
		}
		if rng.Float64() < rate {
			feats |= f
		}
	}
	id := meetingNumber(rng)
	if rng.Float64() < 0.75 {
		id = h.pmis[rng.IntN(len(h.pmis))]
	}
	email := h.email
	switch u := rng.Float64(); {
	case h.emailMixed != "" && u < 0.5:
		email = h.emailMixed
	case u > 0.98:
		email = upperDomain(email)
	}
	hourForm := rng.Float64() < 0.5
	uDelay, uDup, uInv, uKind := rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()
	m := meeting{
		uuid:         makeUUID(s.opts.Seed, 0, d, idx),
		id:           id,
		host:         h.name,
		email:        email,
		userType:     h.userType,
		start:        st,
		end:          en,
		endDay:       s.dayOf(en),
		duration:     durationText(int64(secs), hourForm),
		participants: parts,
		features:     feats,
		delay:        time.Duration(uDelay * uDelay * float64(maxListingDelay)).Truncate(time.Second),
		dup:          uDup < s.opts.DuplicateRate,
	}
	if uInv < s.opts.InvalidRate {
		k := uKind * invalidKinds
		m.invalid = invalidKind(k) + 1
		m.invSub = uint8((k - math.Floor(k)) * 4)
		m.invUUID = makeUUID(s.opts.Seed, 1, d, idx)
	}
	return m
}

func pickHour(rng *rand.Rand, w *[24]float64) int {
	u := rng.Float64() * weightSum(w)
	for h, v := range w {
		if u < v {
			return h
		}
		u -= v
	}
	return 23
}

// meetingSeconds is long-tailed: mostly log-normal around 30 min, some
// 1–5 min calls, a few mistakes under a minute, a few 2–8 h workshops.
func meetingSeconds(rng *rand.Rand) int {
	u := rng.Float64()
	switch {
	case u < 0.01:
		return 10 + rng.IntN(50)
	case u < 0.07:
		return 60 + rng.IntN(241)
	case u < 0.10:
		return 7200 + rng.IntN(21601)
	}
	return min(max(int(1800*math.Exp(rng.NormFloat64()*0.6)), 300), maxMeetingSeconds)
}

// participants is long-tailed: 2–10 typical, occasionally alone,
// sometimes an all-hands of 50–300.
func participants(rng *rand.Rand) int {
	u := rng.Float64()
	switch {
	case u < 0.04:
		return 1
	case u < 0.07:
		return int(50 * math.Exp(rng.Float64()*math.Log(6)))
	}
	return 2 + min(int(2*math.Exp(rng.NormFloat64()*0.7)), 38)
}

func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	limit, p, k := math.Exp(-lambda), 1.0, 0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

// durationText is the vendor's duration: minutes rounded up ("9分钟"),
// and in hour form when asked and long enough ("1小时5分钟").
func durationText(secs int64, hourForm bool) string {
	mins := (max(secs, 0) + 59) / 60
	if hourForm && mins >= 60 {
		if mins%60 == 0 {
			return fmt.Sprintf("%d小时", mins/60)
		}
		return fmt.Sprintf("%d小时%d分钟", mins/60, mins%60)
	}
	return fmt.Sprintf("%d分钟", mins)
}

// makeUUID makes a base64 uuid unique per (namespace, day, index): the
// first 8 bytes are a keyed bijection of those, the 1–4 bytes after are
// noise, so lengths and '=' padding vary as in the vendor's samples.
func makeUUID(seed, ns uint64, d int64, idx int) string {
	v := ns<<62 | (uint64(d)&(1<<38-1))<<24 | uint64(idx)&(1<<24-1)
	key := mix64(seed + 0x9e3779b97f4a7c15)
	u := mix64(v ^ key)
	noise := mix64(u + key)
	var buf [12]byte
	binary.BigEndian.PutUint64(buf[:8], u)
	binary.BigEndian.PutUint32(buf[8:], uint32(noise>>8))
	return base64.StdEncoding.EncodeToString(buf[:9+noise%4])
}

// mix64 is MurmurHash3's finaliser: a bijection on 64-bit values.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
