package simulator

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/timex"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// entryKind is what one place in a listing holds.
type entryKind uint8

const (
	entryMeeting   entryKind = iota // a meeting's record
	entryInvalid                    // the broken companion of a meeting
	entryDuplicate                  // a meeting's record a second time
)

// entry is one record of a listing. The listing is sorted by start time;
// a duplicate sits at its meeting's end time instead, so it often lands
// on another page than the original, as with the vendor.
type entry struct {
	at   int64 // unix seconds, the sort key
	kind entryKind
	seq  int // tie-break: 0 generated, 1+ added index
	m    *meeting
}

// compareEntries is a total order, so pages are stable across requests.
func compareEntries(a, b entry) int {
	if c := cmp.Compare(a.at, b.at); c != 0 {
		return c
	}
	if c := strings.Compare(a.m.uuid, b.m.uuid); c != 0 {
		return c
	}
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// listing is every record the API lists at now for end dates in the local
// days [fromDay, toDay], in a stable order.
func (s *Simulator) listing(fromDay, toDay int64, now time.Time) []entry {
	if toDay < fromDay {
		return nil
	}
	days, added := s.snapshot(fromDay-1, toDay, now)
	memo := s.memo.Load()
	if memo != nil && memo.fromDay == fromDay && memo.toDay == toDay && memo.added == len(added) &&
		!now.Before(memo.at) && now.Before(memo.until) {
		return memo.es
	}
	var es []entry
	for _, d := range days {
		for i := range d {
			m := &d[i]
			if m.endDay < fromDay || m.endDay > toDay || m.end.Add(m.delay).After(now) {
				continue
			}
			es = append(es, entry{at: m.start.Unix(), kind: entryMeeting, m: m})
			if m.dup {
				es = append(es, entry{at: m.end.Unix(), kind: entryDuplicate, m: m})
			}
			if m.invalid != invalidNone {
				es = append(es, entry{at: m.start.Unix(), kind: entryInvalid, m: m})
			}
		}
	}
	until := time.Unix(1<<62, 0) // when an added meeting not listed yet ends
	for i, m := range added {
		if m.endDay >= fromDay && m.endDay <= toDay {
			if m.end.After(now) {
				until = timex.Earlier(until, m.end)
				continue
			}
			es = append(es, entry{at: m.start.Unix(), kind: entryMeeting, seq: i + 1, m: m})
		}
	}
	slices.SortFunc(es, compareEntries)
	if s.opts.NoGenerated {
		// Without a live company the listing changes only with Add and
		// added meetings ending: keep it for the pages that follow, so
		// paging through a million records does not sort them per page.
		s.memo.Store(&listingMemo{fromDay: fromDay, toDay: toDay, added: len(added), at: now, until: until, es: es})
	}
	return es
}

// listingMemo is the last listing of a simulator without generated
// meetings, valid for the same days and added records from at to until.
// Its entries are shared: callers only read them.
type listingMemo struct {
	fromDay, toDay int64
	added          int
	at, until      time.Time
	es             []entry
}

// recordFlags are the boolean fields of a record, in the vendor's order.
var recordFlags = [...]struct {
	field   string
	feature umeeting.Feature
}{
	{`,"has_pstn":`, umeeting.FeaturePSTN},
	{`,"has_voip":`, umeeting.FeatureVoIP},
	{`,"has_3rd_party_audio":`, umeeting.FeatureThirdPartyAudio},
	{`,"has_video":`, umeeting.FeatureVideo},
	{`,"has_screen_share":`, umeeting.FeatureScreenShare},
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendEntry appends one record of a listing in the vendor's shape and
// field order.
func appendEntry(b []byte, e *entry) []byte {
	m := e.m
	inv := invalidNone
	if e.kind == entryInvalid {
		inv = m.invalid
	}
	if inv == invalidNotObject {
		return append(b, [...]string{`"record unavailable"`, `12345`, `["` + m.invUUID + `"]`, `true`}[m.invSub%4]...)
	}
	b = append(b, '{')
	switch inv {
	case invalidNone:
		b = append(b, `"uuid":`...)
		b = appendString(b, m.uuid)
		b = append(b, ',')
	case invalidMissingUUID:
	default:
		b = append(b, `"uuid":`...)
		b = appendString(b, m.invUUID)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b = strconv.AppendInt(b, m.id, 10)
	b = append(b, `,"host":`...)
	b = appendString(b, m.host)
	b = append(b, `,"email":`...)
	b = appendString(b, m.email)
	if m.userType != "" {
		b = append(b, `,"user_type":`...)
		b = appendString(b, m.userType)
	}
	start, end := m.start, m.end
	if inv == invalidEndBeforeStart {
		start, end = end, start.Add(-time.Duration(1+m.invSub)*time.Minute)
	}
	b = append(b, `,"start_time":`...)
	b = appendTime(b, start)
	if inv == invalidBadEndTime {
		b = append(b, [...]string{``, `,"end_time":""`, `,"end_time":"N/A"`, `,"end_time":null`}[m.invSub%4]...)
	} else {
		b = append(b, `,"end_time":`...)
		b = appendTime(b, end)
	}
	b = append(b, `,"duration":`...)
	b = appendString(b, m.duration)
	b = append(b, `,"participants":`...)
	parts := m.participants
	if inv == invalidNegativeParticipants {
		parts = -1 - int(m.invSub)
	}
	b = strconv.AppendInt(b, int64(parts), 10)
	for _, f := range recordFlags {
		b = append(b, f.field...)
		b = strconv.AppendBool(b, m.features&f.feature != 0)
	}
	b = append(b, `,"recording":`...)
	if m.features&umeeting.FeatureRecording != 0 {
		b = append(b, '1')
	} else {
		b = append(b, '0')
	}
	return append(b, '}')
}
