package collector

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/exposition"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// Idle buckets of umeeting_directory_idle_licences: the value of the
// `idle` label and the least time since the holder's latest meeting.
// "never" holders have no meeting in the exporter's history; the day
// buckets are cumulative (90d is part of 30d) and exclude "never".
var idleBuckets = []struct {
	Name string
	Min  time.Duration
}{{"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}

// IdleNever is the `idle` value of licence holders with no meeting at all.
const IdleNever = "never"

// maxLicenceTypes caps the distinct values of the `licence` label (a free
// text column in many directories); the least held types beyond it are
// "(other)".
const maxLicenceTypes = 50

// byGroup ends the HELP of the department and cost-centre families; %s is
// the grouping ("department" or "cost centre").
const byGroup = " Each meeting is attributed to the %[1]s its host had in the directory when the meeting was counted; later moves change no past number. Hosts not in the directory count as \"(unknown)\"."

// groupFamily is one usage counter family by department and by cost centre.
type groupFamily struct {
	dept, cc *metric
}

// newGroupFamily builds both families from one HELP, in which %[1]s names
// the grouping.
func newGroupFamily(name, help string, extra ...string) groupFamily {
	helpFor := func(group string) string { return fmt.Sprintf(help+byGroup, group) + fromLastPoll }
	return groupFamily{
		dept: newMetric("department_"+name, helpFor("department"), dto.MetricType_COUNTER, append([]string{"account", "department"}, extra...)...),
		cc:   newMetric("cost_center_"+name, helpFor("cost centre"), dto.MetricType_COUNTER, append([]string{"account", "cost_center"}, extra...)...),
	}
}

var (
	groupMeetings = newGroupFamily("meetings_total",
		"Finished meetings by the host's %[1]s, each counted once.")
	groupSeconds = newGroupFamily("meeting_seconds_total",
		"Sum of the lengths of finished meetings by the host's %[1]s, in seconds.")
	groupParticipants = newGroupFamily("participants_total",
		"Sum of participants over finished meetings by the host's %[1]s.")
	groupParticipantSeconds = newGroupFamily("participant_seconds_total",
		"Sum of meeting length times participants (participant-seconds) by the host's %[1]s.")
	groupFeatures = newGroupFamily("meetings_by_feature_total",
		"Finished meetings that used a feature, by the host's %[1]s.", "feature")
	groupCost = newGroupFamily("usage_cost_total",
		"Estimated usage cost (tariffs per_meeting_hour and per_pstn_meeting, at the tariffs in force when each meeting was counted) by the host's %[1]s, in the currency of the label. An estimate, not an invoice.", "currency")

	licencesDesc = newMetric("directory_licences",
		"Licences held by people of the directory, by department and licence type (the directory's licence column).", dto.MetricType_GAUGE,
		"account", "department", "licence")
	idleLicencesDesc = newMetric("directory_idle_licences",
		"Licences whose holder's latest meeting ended at least `idle` ago (30d, 90d; 90d is included in 30d), or who never held a meeting in the exporter's history (never), by department and licence type."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "department", "licence", "idle")
	idleHolderDesc = newMetric("directory_idle_licence_last_meeting_timestamp_seconds",
		"Unix time at which an idle licence holder's latest meeting ended (0: never held one), for holders idle 30 days or more; one series per holder e-mail, the longest idle first, at most metrics.max_hosts."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "email", "department", "licence")
	mismatchDesc = newMetric("directory_licence_mismatches",
		"Licence holders whose latest meeting in the API carried another user_type than the directory's licence, by department, directory licence and API user_type."+fromLastPoll, dto.MetricType_GAUGE,
		"account", "department", "licence", "user_type")
	licenceCostDesc = newMetric("chargeback_licence_monthly_cost",
		"Estimated monthly cost of the licences held, by department and cost centre (tariffs.monthly price per licence type), in the currency of the label. An estimate, not an invoice.", dto.MetricType_GAUGE,
		"account", "department", "cost_center", "currency")
)

// buildDirectory writes an account's metrics that join usage with the
// directory into s: usage by department and cost centre, licences, idle
// licences, licence mismatches and chargeback. d may be nil; charge says
// which account holds the licences listed without one. They change with
// time alone at until, when a licence holder's idle time reaches a bucket
// (zero: never).
func buildDirectory(s *sink, name string, snap *store.Snapshot, d *directory.Snapshot, charge *licenceCharge, opts Options) (until time.Time) {
	buildGroups(s, name, snap, d)
	if d == nil || d.Dir == nil {
		return time.Time{}
	}
	buildHostInfo(s, name, snap, d)
	return buildLicences(s, name, snap, d, charge, opts)
}

// buildDirectories builds the directory metrics of the named accounts
// (nil: every account with a snapshot) with charge, and notes when they
// change with time alone. Called with pubMu held.
func (c *Collector) buildDirectories(d *directory.Snapshot, charge *licenceCharge, names []string) []exposition.Change {
	c.mu.RLock()
	snaps, opts := c.snapshots(), map[string]Options{}
	for name, a := range c.accounts {
		opts[name] = a.opts
	}
	c.mu.RUnlock()
	if names == nil {
		names = slices.Sorted(maps.Keys(snaps))
	}
	var changes []exposition.Change
	for _, name := range names {
		if snaps[name] == nil {
			continue
		}
		dir := newSink()
		until := buildDirectory(dir, name, snaps[name], d, charge, opts[name])
		c.mu.Lock()
		if a := c.accounts[name]; a != nil {
			a.dirUntil = until
		}
		c.mu.Unlock()
		changes = append(changes, exposition.Change{Part: directoryPart(name), Families: dir.w.Families()})
	}
	return changes
}

// snapshots returns the latest snapshot of each account that has one.
// Called with c.mu held.
func (c *Collector) snapshots() map[string]*store.Snapshot {
	snaps := make(map[string]*store.Snapshot, len(c.accounts))
	for name, a := range c.accounts {
		if a.snap != nil {
			snaps[name] = a.snap
		}
	}
	return snaps
}

// licenceCharge says which account holds each licence the directory lists
// without an account, when several accounts are polled: the account of
// the holder's latest meeting in any of them (the first by name on a tie),
// or for a holder with no meeting, the first account by name. So sums over
// accounts count each licence and its price once, and a holder is idle
// only when idle in every account (their latest meeting is in the account
// holding the licence). Nil: one account, which holds them all.
type licenceCharge struct {
	first     string            // holds the licences of holders without a meeting
	elsewhere map[string]string // e-mail → account, for holders whose latest meeting is in another
}

// newLicenceCharge computes the charge of the accounts' snapshots.
func newLicenceCharge(d *directory.Snapshot, snaps map[string]*store.Snapshot) *licenceCharge {
	if d == nil || d.Dir == nil || len(snaps) < 2 {
		return nil
	}
	type latest struct {
		account string
		end     int64
	}
	names := slices.Sorted(maps.Keys(snaps))
	seen := map[string]latest{}
	for _, name := range names {
		for i := range snaps[name].Hosts {
			h := &snaps[name].Hosts[i]
			if e, ok := d.Dir.Lookup(h.Email); !ok || e.Licence == "" || e.Account != "" {
				continue
			}
			if l, ok := seen[h.Email]; !ok || h.LastEnd > l.end {
				seen[h.Email] = latest{name, h.LastEnd}
			}
		}
	}
	c := &licenceCharge{first: names[0], elsewhere: map[string]string{}}
	for email, l := range seen {
		if l.account != c.first {
			c.elsewhere[email] = l.account
		}
	}
	return c
}

// holds says whether account name holds e's licence.
func (c *licenceCharge) holds(name string, e *directory.Entry) bool {
	if e.Account != "" {
		return e.Account == name
	}
	if c == nil {
		return true
	}
	if account, ok := c.elsewhere[e.Email]; ok {
		return account == name
	}
	return name == c.first
}

func (c *licenceCharge) equal(o *licenceCharge) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.first == o.first && maps.Equal(c.elsewhere, o.elsewhere)
}

// buildGroups writes the usage counters by department and cost centre.
func buildGroups(s *sink, name string, snap *store.Snapshot, d *directory.Snapshot) {
	currency := ""
	if d != nil && d.Tariffs != nil && (d.Tariffs.PerMeetingHour > 0 || d.Tariffs.PerPSTNMeeting > 0) {
		currency = d.Tariffs.Currency
	}
	for _, g := range []struct {
		series []store.GroupSeries
		metric func(groupFamily) *metric
	}{
		{snap.Departments, func(f groupFamily) *metric { return f.dept }},
		{snap.CostCenters, func(f groupFamily) *metric { return f.cc }},
	} {
		for _, gs := range g.series {
			counter := func(f groupFamily, v float64, extra ...string) {
				s.sample(g.metric(f), v, time.Time{}, append([]string{name, gs.Name}, extra...)...)
			}
			counter(groupMeetings, float64(gs.Meetings))
			counter(groupSeconds, float64(gs.Seconds))
			counter(groupParticipants, float64(gs.Participants))
			counter(groupParticipantSeconds, float64(gs.ParticipantSeconds))
			for i, f := range umeeting.FeatureNames {
				counter(groupFeatures, float64(gs.Features[i]), f)
			}
			if currency != "" {
				counter(groupCost, float64(gs.CostMicros)/1e6, currency)
			}
		}
	}
}

// buildHostInfo writes the directory's attributes of the hosts that have
// series of their own (the filters and max_hosts of the usage metrics) as
// umeeting_directory_host_info, with the configured extra columns as
// further labels.
func buildHostInfo(s *sink, name string, snap *store.Snapshot, d *directory.Snapshot) {
	m := newMetric("directory_host_info",
		"The directory's entry of a host with series of its own, always 1: join it to per-host series with * on (account, email) group_left (department, ...).",
		dto.MetricType_GAUGE, append([]string{"account", "email", "department", "cost_center", "site", "licence"}, d.Dir.ExtraColumns...)...)
	for _, h := range snap.Hosts {
		e, ok := d.Dir.Lookup(h.Email)
		if !h.Admitted || !ok {
			continue
		}
		labels := append([]string{name, e.Email, orUnknown(e.Department), orUnknown(e.CostCenter), e.Site, e.Licence}, e.Extra...)
		s.sample(m, 1, time.Time{}, labels...)
	}
}

type licenceKey struct{ dept, licence string }

type mismatchKey struct{ dept, licence, userType string }

type costKey struct{ dept, cc string }

// buildLicences joins the directory's licence holders of the account with
// the hosts' latest meetings; until is the first time after snap's at
// which a holder's idle time reaches a bucket (zero: none).
func buildLicences(s *sink, name string, snap *store.Snapshot, d *directory.Snapshot, charge *licenceCharge, opts Options) (until time.Time) {
	hosts := make(map[string]*store.Host, len(snap.Hosts))
	for i := range snap.Hosts {
		hosts[snap.Hosts[i].Email] = &snap.Hosts[i].Host
	}
	now := snap.At.Unix()
	var holders []*directory.Entry
	perDept, perCC, perLicence := map[string]int{}, map[string]int{}, map[string]int{}
	entries := d.Dir.Entries()
	for i := range entries {
		e := &entries[i]
		if e.Licence == "" || !charge.holds(name, e) {
			continue
		}
		holders = append(holders, e)
		perDept[orUnknown(e.Department)]++
		perCC[orUnknown(e.CostCenter)]++
		perLicence[e.Licence]++
	}
	dept := capDepartments(perDept, d.MaxDepartments)
	costCenter := capDepartments(perCC, d.MaxDepartments) // as the usage counters by cost centre
	licence := capDepartments(perLicence, maxLicenceTypes)

	licences := map[licenceKey]int{}
	idle := map[licenceKey]*[3]int{} // never, 30d, 90d
	mismatches := map[mismatchKey]int{}
	costs := map[costKey]float64{}
	type idleHolder struct {
		e    *directory.Entry
		k    licenceKey
		last int64 // 0: never
	}
	var idleHolders []idleHolder
	next := int64(math.MaxInt64)
	for _, e := range holders {
		k := licenceKey{dept(e.Department), licence(e.Licence)}
		licences[k]++
		counts := idle[k]
		if counts == nil {
			counts = &[3]int{}
			idle[k] = counts
		}
		h, seen := hosts[e.Email]
		isIdle := !seen
		if !seen {
			counts[0]++
		} else {
			for i, b := range idleBuckets {
				if at := h.LastEnd + int64(b.Min/time.Second); now >= at {
					counts[i+1]++
					isIdle = true
				} else {
					next = min(next, at)
				}
			}
			if h.UserType != umeeting.UnknownUserType && !strings.EqualFold(h.UserType, e.Licence) {
				mismatches[mismatchKey{k.dept, k.licence, h.UserType}]++
			}
		}
		if isIdle && opts.PerHost {
			last := int64(0)
			if seen {
				last = h.LastEnd
			}
			idleHolders = append(idleHolders, idleHolder{e, k, last})
		}
		if t := d.Tariffs; t != nil {
			if price, ok := t.MonthlyPrice(e.Licence); ok {
				costs[costKey{k.dept, costCenter(e.CostCenter)}] += price
			}
		}
	}
	// One series per idle holder, at most max_hosts of them: the longest
	// idle first (never, then the oldest latest meeting).
	if opts.MaxHosts > 0 && len(idleHolders) > opts.MaxHosts {
		slices.SortFunc(idleHolders, func(a, b idleHolder) int {
			return cmp.Or(cmp.Compare(a.last, b.last), cmp.Compare(a.e.Email, b.e.Email))
		})
		idleHolders = idleHolders[:opts.MaxHosts]
	}
	for _, h := range idleHolders {
		s.sample(idleHolderDesc, float64(h.last), time.Time{}, name, h.e.Email, h.k.dept, h.k.licence)
	}
	for _, k := range slices.SortedFunc(maps.Keys(licences), func(a, b licenceKey) int {
		return cmp.Or(cmp.Compare(a.dept, b.dept), cmp.Compare(a.licence, b.licence))
	}) {
		s.sample(licencesDesc, float64(licences[k]), time.Time{}, name, k.dept, k.licence)
		counts := idle[k]
		s.sample(idleLicencesDesc, float64(counts[0]), time.Time{}, name, k.dept, k.licence, IdleNever)
		for i, b := range idleBuckets {
			s.sample(idleLicencesDesc, float64(counts[i+1]), time.Time{}, name, k.dept, k.licence, b.Name)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(mismatches), func(a, b mismatchKey) int {
		return cmp.Or(cmp.Compare(a.dept, b.dept), cmp.Compare(a.licence, b.licence), cmp.Compare(a.userType, b.userType))
	}) {
		s.sample(mismatchDesc, float64(mismatches[k]), time.Time{}, name, k.dept, k.licence, k.userType)
	}
	for _, k := range slices.SortedFunc(maps.Keys(costs), func(a, b costKey) int { return cmp.Or(cmp.Compare(a.dept, b.dept), cmp.Compare(a.cc, b.cc)) }) {
		s.sample(licenceCostDesc, costs[k], time.Time{}, name, k.dept, k.cc, d.Tariffs.Currency)
	}
	if next != math.MaxInt64 {
		until = time.Unix(next, 0)
	}
	return until
}

// capDepartments keeps the max departments with the most licences (ties
// by name) and maps the rest to store.Other.
func capDepartments(perDept map[string]int, maxDepts int) func(string) string {
	if maxDepts <= 0 || len(perDept) <= maxDepts {
		return orUnknown
	}
	names := slices.SortedFunc(maps.Keys(perDept), func(a, b string) int { return cmp.Or(cmp.Compare(perDept[b], perDept[a]), cmp.Compare(a, b)) })
	kept := make(map[string]bool, maxDepts)
	for _, n := range names[:maxDepts] {
		kept[n] = true
	}
	return func(d string) string {
		if d = orUnknown(d); kept[d] {
			return d
		}
		return store.Other
	}
}

func orUnknown(s string) string {
	if s == "" {
		return directory.Unknown
	}
	return s
}
