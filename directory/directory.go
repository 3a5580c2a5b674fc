// Package directory reads the company directory (a CSV file, an LDAP or
// Active Directory server, or both) and joins it with the API's hosts by
// e-mail: department, cost centre, site and licence of every person,
// including licence holders who never held a meeting, whom the history API
// never lists.
//
// A Directory is immutable once built; the Manager swaps a new one in after
// each successful read, so polls and scrapes never wait for a source.
package directory

import (
	"strings"
	"unique"
)

// Unknown is the department and cost centre of hosts the directory does
// not list (and of people it lists without one).
const Unknown = "(unknown)"

// Entry is one person of the directory.
type Entry struct {
	Email      string // trimmed and lower-cased, as the exporter normalises the API's
	Department string
	CostCenter string
	Site       string
	Licence    string // licence type, named like the API's user_type; "" = holds none
	// Account is the UMeeting account the licence belongs to; "" = every
	// configured account.
	Account string
	Extra   []string // values of the configured extra columns, in config order
}

// Directory is an immutable copy of a directory, indexed by e-mail.
type Directory struct {
	// ExtraColumns name the Extra values of every entry.
	ExtraColumns []string
	// Duplicates counts entries dropped because their e-mail was listed
	// before (the first one wins).
	Duplicates int
	// NoEmail counts entries dropped because they have no e-mail.
	NoEmail int

	entries []Entry
	index   map[string]int32
}

// Len is the number of people in the directory.
func (d *Directory) Len() int {
	if d == nil {
		return 0
	}
	return len(d.entries)
}

// Entries returns the people, in source order; the slice must not be changed.
func (d *Directory) Entries() []Entry {
	if d == nil {
		return nil
	}
	return d.entries
}

// Lookup finds a person by e-mail (already normalised).
func (d *Directory) Lookup(email string) (*Entry, bool) {
	if d == nil {
		return nil, false
	}
	i, ok := d.index[email]
	if !ok {
		return nil, false
	}
	return &d.entries[i], true
}

func newDirectory(extra []string, sizeHint int) *Directory {
	return &Directory{ExtraColumns: extra, entries: make([]Entry, 0, sizeHint), index: make(map[string]int32, sizeHint)}
}

// value trims a field and interns it: departments, sites and licences
// repeat on every row and share one copy, and no value keeps the reader's
// line alive.
func value(s string) string {
	return unique.Make(strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")).Value() // label values must be UTF-8
}

// add adds e unless its e-mail is missing or taken; e's strings are
// normalised and copied.
func (d *Directory) add(e Entry) {
	e.Email = strings.ToValidUTF8(strings.ToLower(strings.TrimSpace(e.Email)), "\uFFFD") // as the API client does
	if e.Email == "" {
		d.NoEmail++
		return
	}
	if _, dup := d.index[e.Email]; dup {
		d.Duplicates++
		return
	}
	e.Email = strings.Clone(e.Email)
	e.Department, e.CostCenter, e.Site = value(e.Department), value(e.CostCenter), value(e.Site)
	e.Licence, e.Account = value(e.Licence), value(e.Account)
	if len(e.Extra) > 0 {
		extra := make([]string, len(e.Extra))
		for i, v := range e.Extra {
			extra[i] = value(v)
		}
		e.Extra = extra
	}
	d.index[e.Email] = int32(len(d.entries))
	d.entries = append(d.entries, e)
}

// merge combines directories: a person listed by several keeps the entry
// of the first directory (the file corrects and completes LDAP). Nil
// directories are skipped; the counts of dropped entries add up.
func merge(dirs ...*Directory) *Directory {
	n := 0
	var extra []string
	for _, d := range dirs {
		if d != nil {
			n += d.Len()
			extra = d.ExtraColumns
		}
	}
	if len(dirs) == 1 || n == 0 {
		for _, d := range dirs {
			if d != nil {
				return d
			}
		}
	}
	out := newDirectory(extra, n)
	for _, d := range dirs {
		if d == nil {
			continue
		}
		out.Duplicates += d.Duplicates
		out.NoEmail += d.NoEmail
		for _, e := range d.entries {
			if _, taken := out.index[e.Email]; taken {
				continue
			}
			out.index[e.Email] = int32(len(out.entries))
			out.entries = append(out.entries, e)
		}
	}
	return out
}
