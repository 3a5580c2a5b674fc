package store

import (
	"time"

	"github.com/umeeting/umeeting_exporter/umeeting"
)

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
