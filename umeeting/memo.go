package umeeting

import (
	"hash/maphash"
	"sync"
	"time"
)

// maxMemoBytes bounds the memory of a Client's memo: records beyond it
// are read in full at every poll.
const maxMemoBytes = 32 << 20

// memo remembers the valid records of a Client's last fetch, each as
// written and the Meeting it made. A poll lists mostly the records of the
// poll before: a record found here byte for byte is not parsed again,
// which gives the same Meeting (the parser depends on the record and the
// Client's settings only). It is used by one fetch at a time.
type memo struct {
	seed    maphash.Seed
	entries map[uint64]*memoEntry // by the record's hash
	answers map[uint64]*answer    // by the answer's hash
	fetch   uint64                // the current fetch
	bytes   int
	valid   int  // valid records the current fetch read
	warm    bool // the last fetch left most of its records here
	// last is the entry of the record last found or put; nil when it
	// was not kept.
	last *memoEntry
	// listed and listedAnswers count the entries and answers the current
	// fetch marked first: when they are all, end has nothing to forget.
	listed, listedAnswers int
}

type memoEntry struct {
	raw   string
	m     Meeting
	fetch uint64 // the last fetch that listed it
}

// memoEntryBytes is an entry's memory beside its record and strings.
const memoEntryBytes = 200

func newMemo() *memo {
	return &memo{seed: maphash.MakeSeed(), entries: map[uint64]*memoEntry{}, answers: map[uint64]*answer{}}
}

// answer is an answer (a page) decoded without error, and what it handed
// over, element by element.
type answer struct {
	body  string
	env   Envelope
	items []answerItem
	fetch uint64 // the last fetch that got it
	// stamp is the Voucher that was last handed every valid meeting of
	// the answer that ended in [from, to] (0: none).
	stamp    uint64
	from, to time.Time
	// at is its place in its request period when last read, and fresh
	// the elements it brought that the period had not seen before.
	at    *chainNode
	fresh int
}

type answerItem struct {
	hash    uint64
	entry   *memoEntry // valid and delivered: its record's entry, if kept
	deliver bool
	reason  string  // invalid: why
	raw     string  // invalid: the record as written
	m       Meeting // valid and delivered: the meeting
}

// answerItemBytes is an item's memory beside its strings.
const answerItemBytes = 160

func (a *answer) size() int {
	n := len(a.body) + len(a.items)*answerItemBytes
	for _, it := range a.items {
		n += len(it.raw)
	}
	return n
}

// answer returns the answer of hash h if it is body, byte for byte.
func (c *memo) answer(h uint64, body []byte) *answer {
	a := c.answers[h]
	if a == nil || a.body != string(body) {
		return nil
	}
	if a.fetch != c.fetch {
		a.fetch = c.fetch
		c.listedAnswers++
	}
	return a
}

// putAnswer remembers the answer body of hash h, while the memo has room.
func (c *memo) putAnswer(h uint64, body []byte, a *answer) {
	a.body, a.fetch = string(body), c.fetch
	if old := c.answers[h]; old != nil {
		c.bytes -= old.size()
		delete(c.answers, h)
		if old.fetch == c.fetch {
			c.listedAnswers--
		}
	}
	if c.bytes+a.size() > maxMemoBytes {
		return
	}
	c.answers[h] = a
	c.listedAnswers++
	c.bytes += a.size()
}

// touch marks the record of an answer replayed as listed by this fetch.
func (c *memo) touch(it *answerItem) {
	if it.entry != nil {
		c.mark(it.entry)
	}
	c.valid++
}

// mark marks e as listed by this fetch.
func (c *memo) mark(e *memoEntry) {
	if e.fetch != c.fetch {
		e.fetch = c.fetch
		c.listed++
	}
}

// get copies into m the Meeting of raw (h is its hash with m's seed) and
// says whether raw was remembered; a nil memo remembers nothing.
func (c *memo) get(h uint64, raw []byte, m *Meeting) bool {
	if c == nil {
		return false
	}
	e := c.entries[h]
	if e == nil || e.raw != string(raw) {
		return false
	}
	c.mark(e)
	c.valid++
	c.last = e
	*m = e.m
	return true
}

// isWarm says whether the fetch before left most of its valid records in
// the memo, so that reading elements whole to look them up pays.
func (c *memo) isWarm() bool { return c != nil && c.warm }

// put remembers the Meeting m that raw made, while the memo has room.
func (c *memo) put(h uint64, raw []byte, m *Meeting) {
	if c == nil {
		return
	}
	c.last = nil
	if c.valid++; c.bytes+len(raw)+len(m.UUID)+memoEntryBytes > maxMemoBytes {
		return
	}
	if old := c.entries[h]; old != nil { // another record of the same hash
		c.bytes -= len(old.raw) + len(old.m.UUID) + memoEntryBytes
		if old.fetch == c.fetch {
			c.listed--
		}
	}
	c.last = &memoEntry{raw: string(raw), m: *m}
	c.mark(c.last)
	c.entries[h] = c.last
	c.bytes += len(raw) + len(m.UUID) + memoEntryBytes
}

// begin starts a fetch.
func (c *memo) begin() { c.fetch, c.valid, c.listed, c.listedAnswers = c.fetch+1, 0, 0, 0 }

// end forgets the records the fetch just ended did not list, so that the
// memo holds what the next poll is likely to list again, and says whether
// it holds most of them.
func (c *memo) end() {
	entries, answers := c.entries, c.answers
	if c.listed >= len(entries) {
		entries = nil // every one was listed (or only kept alive by an answer)
	}
	if c.listedAnswers >= len(answers) {
		answers = nil
	}
	for h, e := range entries {
		if e.fetch != c.fetch {
			c.bytes -= len(e.raw) + len(e.m.UUID) + memoEntryBytes
			delete(c.entries, h)
		}
	}
	for h, a := range answers {
		if a.fetch != c.fetch {
			c.bytes -= a.size()
			delete(c.answers, h)
		}
	}
	c.warm = c.valid > 0 && 4*len(c.entries) >= 3*c.valid
}

// decoderPool hands a Client's decoder, with its buffers and memo, to one
// fetch at a time; a fetch running beside it makes its own.
type decoderPool struct {
	mu  sync.Mutex
	dec *decoder
}

func (p *decoderPool) take() *decoder {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.dec
	p.dec = nil
	return d
}

func (p *decoderPool) give(d *decoder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dec = d
}
