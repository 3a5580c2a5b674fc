package store

import (
	"cmp"
	"maps"
	"slices"
	"sort"
)

// shown keeps the series and hosts of the last Snapshot, sorted, and
// what changed in the state since: the next Snapshot patches them instead
// of copying and sorting every series and host of the account again (a
// poll that counted a few meetings at 10,000 hosts changes a few of each).
// Every change of a series or host is logged for Rollback (undoLog), so
// the undo log's keys are what changed.
type shown struct {
	valid  bool // false: the next Snapshot builds everything
	series []Series
	hosts  []HostSnapshot
	// dirtySeries and dirtyHosts changed since series and hosts were taken.
	dirtySeries map[SeriesKey]struct{}
	dirtyHosts  map[string]struct{}
}

// touched records what an Apply or its Rollback changed (u's keys).
func (sh *shown) touched(u *undoLog) {
	if !sh.valid {
		return
	}
	if sh.dirtySeries == nil {
		sh.dirtySeries, sh.dirtyHosts = map[SeriesKey]struct{}{}, map[string]struct{}{}
	}
	for k := range u.series {
		sh.dirtySeries[k] = struct{}{}
	}
	for email := range u.hosts {
		sh.dirtyHosts[email] = struct{}{}
	}
}

// reset makes the next Snapshot build everything: after a change that the
// undo log does not cover (a policy, a migration).
func (sh *shown) reset() {
	*sh = shown{}
}

func compareSeries(a, b SeriesKey) int {
	return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.UserType, b.UserType))
}

// showSeries returns what a Snapshot shows of a series (false: not exposed).
func showSeries(k SeriesKey, x *series) (Series, bool) {
	if x == nil || !x.Exposed {
		return Series{}, false
	}
	c := x.Counters
	if x.Held != nil {
		c = *x.Held
	}
	return Series{SeriesKey: k, Counters: c, Created: unixTime(x.Created)}, true
}

// snapshotSeries returns the exposed series sorted by e-mail and
// user_type, and the hosts sorted by e-mail, as they are now. Called with
// s.mu held; the slices returned are never changed afterwards.
func (s *Store) snapshotSeries() ([]Series, []HostSnapshot) {
	sh := &s.shown
	st := s.st
	if !sh.valid {
		series := make([]Series, 0, len(st.Series))
		for k, x := range st.Series {
			if v, ok := showSeries(k, x); ok {
				series = append(series, v)
			}
		}
		slices.SortFunc(series, func(a, b Series) int { return compareSeries(a.SeriesKey, b.SeriesKey) })
		hosts := make([]HostSnapshot, 0, len(st.Hosts))
		for email, h := range st.Hosts {
			hosts = append(hosts, HostSnapshot{Email: email, Host: *h})
		}
		slices.SortFunc(hosts, func(a, b HostSnapshot) int { return cmp.Compare(a.Email, b.Email) })
		*sh = shown{valid: true, series: series, hosts: hosts}
		return series, hosts
	}
	if len(sh.dirtySeries) > 0 {
		sh.series = patch(sh.series, slices.SortedFunc(maps.Keys(sh.dirtySeries), compareSeries),
			func(v *Series) SeriesKey { return v.SeriesKey }, compareSeries,
			func(k SeriesKey) (Series, bool) { return showSeries(k, st.Series[k]) })
	}
	if len(sh.dirtyHosts) > 0 {
		sh.hosts = patch(sh.hosts, slices.Sorted(maps.Keys(sh.dirtyHosts)),
			func(v *HostSnapshot) string { return v.Email }, cmp.Compare[string],
			func(email string) (HostSnapshot, bool) {
				if h := st.Hosts[email]; h != nil {
					return HostSnapshot{Email: email, Host: *h}, true
				}
				return HostSnapshot{}, false
			})
	}
	clear(sh.dirtySeries)
	clear(sh.dirtyHosts)
	return sh.series, sh.hosts
}

// patch returns a copy of old, sorted by key, with the entries of the
// sorted keys replaced by what now returns for them: changed, added, or
// removed when it returns false.
func patch[V, K any](old []V, keys []K, key func(*V) K, compare func(a, b K) int, now func(K) (V, bool)) []V {
	out := make([]V, 0, len(old)+len(keys))
	i := 0
	for _, k := range keys {
		j := i + sort.Search(len(old)-i, func(n int) bool { return compare(key(&old[i+n]), k) >= 0 })
		out = append(out, old[i:j]...)
		i = j
		if i < len(old) && compare(key(&old[i]), k) == 0 {
			i++ // replaced (or removed) below
		}
		if v, ok := now(k); ok {
			out = append(out, v)
		}
	}
	return append(out, old[i:]...)
}
