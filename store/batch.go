package store

import (
	"hash/fnv"
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Batch collects the records of one poll. It implements umeeting.Sink and
// keeps only what is new, so its size grows with new meetings, not with
// the size of an answer. Nothing reaches the Store before Apply.
type Batch struct {
	s   *Store
	win Window

	newMeetings []newMeeting
	names       []hostNames
	namesIndex  map[hostNames]uint32
	pageMark    int

	// hostOnly are meetings too old to remember that may still move a
	// host's latest meeting forward (backfill).
	hostOnly     []umeeting.Meeting
	hostBest     map[string]int64
	hostOnlyMark int

	invalid     []invalidRecord // repeats are counted once by Apply
	invalidMark int
}

type invalidRecord struct {
	reason string
	hash   uint64
}

// NewBatch starts collecting the records of a poll with window w.
func (s *Store) NewBatch(w Window) *Batch {
	return &Batch{
		s:          s,
		win:        w,
		hostBest:   map[string]int64{},
		namesIndex: map[hostNames]uint32{},
	}
}

// ReadFrom says the batch's requests reached back to t only (a first poll
// that could not read all of its backfill): nothing that ended before t is
// counted, and the horizon is not set below t, so the part not read is
// never counted by a later poll either.
func (b *Batch) ReadFrom(t time.Time) {
	if t.After(b.win.CountFrom) {
		b.win.CountFrom = t
	}
}

// Meeting implements umeeting.Sink. A meeting listed twice in one answer
// is kept twice here and dropped by Apply, which saves a second map.
func (b *Batch) Meeting(m *umeeting.Meeting) {
	if m.End.Before(b.win.KeepFrom) {
		b.hostCandidate(m)
		return
	}
	b.s.mu.Lock()
	old, known := b.s.st.Meetings[m.UUID]
	b.s.mu.Unlock()
	if !known || m.End.Unix() > old.End {
		b.keep(m) // new, or listed with a later end (see Apply)
	}
}

func (b *Batch) hostCandidate(m *umeeting.Meeting) {
	end := m.End.Unix()
	best, ok := b.hostBest[m.Email]
	if !ok {
		b.s.mu.Lock()
		if h := b.s.st.Hosts[m.Email]; h != nil {
			best, ok = h.LastEnd, true
		}
		b.s.mu.Unlock()
	}
	if ok && end <= best {
		return
	}
	b.hostBest[m.Email] = end
	b.hostOnly = append(b.hostOnly, *m)
}

// Invalid implements umeeting.Sink: an invalid record is counted once for
// as long as the API keeps listing it.
func (b *Batch) Invalid(reason string, raw []byte) {
	h := fnv.New64a()
	h.Write(raw)
	b.invalid = append(b.invalid, invalidRecord{reason: reason, hash: h.Sum64()})
}

// CommitPage implements umeeting.Sink.
func (b *Batch) CommitPage() {
	b.pageMark, b.hostOnlyMark, b.invalidMark = len(b.newMeetings), len(b.hostOnly), len(b.invalid)
}

// DiscardPage implements umeeting.Sink: it forgets the records handed over
// since the last CommitPage.
func (b *Batch) DiscardPage() {
	b.newMeetings = b.newMeetings[:b.pageMark]
	b.invalid = b.invalid[:b.invalidMark]
	if len(b.hostOnly) > b.hostOnlyMark {
		b.hostOnly = b.hostOnly[:b.hostOnlyMark]
		clear(b.hostBest)
		for _, m := range b.hostOnly {
			b.hostBest[m.Email] = max(b.hostBest[m.Email], m.End.Unix())
		}
	}
}

// newMeeting is what Apply needs of a meeting not remembered yet. A batch
// holds one for each new record until the poll commits (a first poll of a
// busy account: a million), so it is kept small: 48 bytes and the uuid,
// against 136 bytes for a umeeting.Meeting, the host's names being shared
// through the batch's table of them.
type newMeeting struct {
	uuid         string
	start, end   int64 // unix seconds
	participants int
	names        uint32 // index in Batch.names
	features     umeeting.Feature
}

// hostNames are what a meeting says of its host.
type hostNames struct{ host, email, userType string }

// keep adds m to the new meetings.
func (b *Batch) keep(m *umeeting.Meeting) {
	names := hostNames{m.Host, m.Email, m.UserType}
	i, ok := b.namesIndex[names]
	if !ok {
		i = uint32(len(b.names))
		b.names = append(b.names, names)
		b.namesIndex[names] = i
	}
	b.newMeetings = append(b.newMeetings, newMeeting{uuid: m.UUID, start: m.Start.Unix(), end: m.End.Unix(),
		participants: m.Participants, names: i, features: m.Features})
}

// meeting sets m to the i-th new meeting, to the second.
func (b *Batch) meeting(i int, m *umeeting.Meeting) {
	n := &b.newMeetings[i]
	h := &b.names[n.names]
	*m = umeeting.Meeting{UUID: n.uuid, Host: h.host, Email: h.email, UserType: h.userType,
		Start: time.Unix(n.start, 0), End: time.Unix(n.end, 0), Participants: n.participants, Features: n.features}
}
