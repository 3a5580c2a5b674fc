package collector

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

const benchPeople = 100_000

// benchDirectoryCSV is a directory of benchPeople people in 400
// departments; the first benchHosts of them are the hosts of bigSnapshot,
// three of four hold a licence.
func benchDirectoryCSV() []byte {
	var b bytes.Buffer
	b.WriteString("email,department,cost_center,site,licence\n")
	for i := range benchPeople {
		fmt.Fprintf(&b, "host%d@example.com,Department %d,CC-%d,Site %d,%s\n", i, i%400, i%100, i%9, []string{"Corp", "Pro", "Basic", ""}[i%4])
	}
	return b.Bytes()
}

// BenchmarkDirectoryJoin measures what the directory adds to each poll of
// an account with 10,000 hosts and a directory of 100,000 people: building
// the department, licence, idle and chargeback metrics (buildDirectory),
// side by side with its floor, writing the account's usage metrics, which
// every poll that counted does anyway. It also reports the retained
// heap of the parsed directory.
func BenchmarkDirectoryJoin(b *testing.B) {
	csv := benchDirectoryCSV()
	before := umeetingtest.LiveHeap()
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: csv, RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 500},
		Tariffs:   &config.Tariffs{Currency: "EUR", Monthly: map[string]float64{"Corp": 20, "Pro": 15, "Basic": 5}, PerMeetingHour: 1},
	})
	defer dirs.Stop()
	heap := umeetingtest.LiveHeap() - before
	if dirs.Current().Dir.Len() != benchPeople {
		b.Fatalf("%d people", dirs.Current().Dir.Len())
	}
	s, _ := store.Open(b.TempDir(), "bench")
	s.SetAttributor(dirs, 500)
	batch := s.NewBatch(s.Window(t0, 48*time.Hour, 0))
	for i := range benchHosts {
		m := umeeting.Meeting{
			UUID: fmt.Sprintf("u%d", i), Host: fmt.Sprintf("Host %d", i), Email: fmt.Sprintf("host%d@example.com", i),
			UserType: "Corp", Start: t0.Add(-time.Hour), End: t0.Add(-time.Duration(i) * time.Second), Participants: 1 + i%30,
		}
		batch.Meeting(&m)
	}
	batch.CommitPage()
	s.Apply(batch)
	snap := s.Snapshot(t0)
	d := dirs.Current()
	opts := Options{PerHost: true, MaxHosts: config.DefaultMaxHosts}
	b.Run("BuildDirectory", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buildDirectory(newSink(), "bench", snap, d, nil, opts)
		}
		b.ReportMetric(float64(heap)/(1<<20), "MiB-directory")
	})
	b.Run("WriteUsage-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newSink().counted("bench", snap)
		}
	})
	// With two accounts, each publication first works out which account
	// holds the licences listed without one (both have the 10,000 hosts).
	b.Run("LicenceCharge-2-accounts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newLicenceCharge(d, map[string]*store.Snapshot{"a": snap, "b": snap})
		}
	})
	b.Run("Attribute-per-meeting", func(b *testing.B) {
		m := umeeting.Meeting{Email: "host4242@example.com", Features: umeeting.FeaturePSTN}
		for b.Loop() {
			dirs.Attribute(&m, 600)
		}
	})
}

// BenchmarkReadDirectory100k measures one refresh of a CSV directory of
// 100,000 people (parse, normalise, index).
func BenchmarkReadDirectory100k(b *testing.B) {
	csv := benchDirectoryCSV()
	b.SetBytes(int64(len(csv)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := directory.ParseCSV(bytes.NewReader(csv), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDirectoryPoll measures what publishing one poll costs an
// account of 10,000 hosts with a directory of 100,000 people (usage and
// directory metrics: build, gather, encode, compress), after the
// snapshot: a poll that counted nothing (the live gauges only) and one
// that counted 5 meetings of existing hosts (everything).
func BenchmarkDirectoryPoll(b *testing.B) {
	dirs := directory.NewManager(log.NewNopLogger(), nil)
	dirs.Apply(&config.Config{
		Directory: &config.Directory{Embedded: benchDirectoryCSV(), RefreshInterval: config.NewDuration(time.Hour), MaxDepartments: 500},
		Tariffs:   &config.Tariffs{Currency: "EUR", Monthly: map[string]float64{"Corp": 20, "Pro": 15, "Basic": 5}, PerMeetingHour: 1},
	})
	defer dirs.Stop()
	for _, mode := range []string{"nothing_new", "new_meetings"} {
		b.Run(mode, func(b *testing.B) {
			s, _ := store.Open(b.TempDir(), "bench")
			s.SetAttributor(dirs, 500)
			opts := Options{PerHost: true, MaxHosts: config.DefaultMaxHosts}
			s.SetPolicy(opts, t0)
			poll := func(now time.Time, ms []umeeting.Meeting) *store.Snapshot {
				batch := s.NewBatch(s.Window(now, 48*time.Hour, 0))
				for i := range ms {
					batch.Meeting(&ms[i])
				}
				batch.CommitPage()
				s.Apply(batch)
				return s.Snapshot(now)
			}
			ms := make([]umeeting.Meeting, benchHosts)
			for i := range ms {
				ms[i] = umeeting.Meeting{UUID: fmt.Sprintf("u%d", i), Host: fmt.Sprintf("Host %d", i), Email: fmt.Sprintf("host%d@example.com", i),
					UserType: "Corp", Start: t0.Add(-time.Hour), End: t0.Add(-time.Duration(i) * time.Second), Participants: 1 + i%30}
			}
			c := New()
			c.SetDirectory(dirs.Current())
			c.SetUsage("bench", poll(t0, ms), opts)
			now, added := t0, 0
			for b.Loop() {
				b.StopTimer()
				now = now.Add(time.Minute)
				var ms []umeeting.Meeting
				if mode != "nothing_new" {
					for range 5 {
						h := added * 1999 % benchHosts
						ms = append(ms, umeeting.Meeting{UUID: fmt.Sprint("new", added), Host: fmt.Sprintf("Host %d", h), Email: fmt.Sprintf("host%d@example.com", h),
							UserType: "Corp", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Participants: 2})
						added++
					}
				}
				snap := poll(now, ms)
				b.StartTimer()
				if mode == "nothing_new" {
					c.SetGauges("bench", now, snap.ActiveHosts, snap.PeakMeetings, snap.PeakParticipants)
				} else {
					c.SetUsage("bench", snap, opts)
				}
			}
		})
	}
}
