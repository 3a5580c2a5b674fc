package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/internal/mixin"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestCreatedTimestampZeroIngestion shows what OpenMetrics _created adds on
// Prometheus 3 with --enable-feature=created-timestamp-zero-ingestion.
//
// The exporter publishes a new host's series at 0 and holds its first
// increment for a poll, so that a Prometheus scraping all along sees the
// first meeting in increase() without any feature flag. A Prometheus that
// was not scraping at that moment (started later, restarted, or a missed
// scrape) first sees the series at its count, and increase() reads that
// as the baseline: 0. With the feature, Prometheus 3 ingests a 0 at the
// series' _created time, and increase() sees those first meetings. Series
// of the baseline (history counted at the exporter's first start) carry no
// _created, so even with the feature the history is not shown as an
// increase.
func TestCreatedTimestampZeroIngestion(t *testing.T) {
	var rel3 *mixin.PrometheusRelease
	for _, rel := range prometheusReleases(t) {
		if rel.Major == 3 {
			rel3 = &rel
		}
	}
	if rel3 == nil {
		t.Fatal("no Prometheus 3 among the releases")
	}

	sim, apiURL := newSim(t, simulator.Options{Hosts: 20})
	dir := t.TempDir()
	e := startExporter(t, "--config.file="+writeConfig(t, dir, apiURL, retries, ""), "--storage.path="+dir+"/data")
	waitExact(t, e, sim, "e2e")

	// Three hosts the exporter has never seen hold 2, 3 and 4 meetings.
	now := time.Now().Truncate(time.Second)
	var added []umeeting.Meeting
	for h := range 3 {
		for i := range h + 2 {
			end := now.Add(-time.Duration(10+i) * time.Second)
			added = append(added, umeeting.Meeting{
				UUID: fmt.Sprintf("ct-%d-%d", h, i), ID: int64(7000 + 10*h + i),
				Host: fmt.Sprintf("CT Host %d", h), Email: fmt.Sprintf("ct.host%d@example.com", h), UserType: "Corp",
				Start: end.Add(-30 * time.Minute), End: end, Participants: 3,
			})
		}
	}
	sim.Add(added...)
	waitExact(t, e, sim, "e2e")

	// The exporter serves their _created in OpenMetrics.
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.Addr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `umeeting_meetings_created{account="e2e",email="ct.host0@example.com"`) {
		t.Fatalf("no umeeting_meetings_created for a new host in the OpenMetrics exposition")
	}

	// Only now do two Prometheus 3 servers start scraping: the held zeros
	// are over, each new series is first seen at its count.
	plain := startPrometheus(t, *rel3, promConfig{targets: []string{e.Addr}})
	ct := startPrometheus(t, *rel3, promConfig{targets: []string{e.Addr}, flags: []string{"--enable-feature=created-timestamp-zero-ingestion"}})
	for _, p := range []*promServer{plain, ct} {
		waitFor(t, 30*time.Second, "10 scrapes", func() bool {
			return p.value(`count_over_time(up{job="umeeting"}[1m]) >= 10`) != ""
		})
	}

	newHosts := `umeeting_meetings_total{account="e2e",email=~"ct\\.host.*"}`
	history := `umeeting_meetings_total{account="e2e",email!~"ct\\.host.*"}`
	at := time.Now()
	sum := func(p *promServer, expr string) float64 {
		ss := p.query(t, expr, at)
		if len(ss) != 1 {
			t.Fatalf("Prometheus %s: %s: %d series", p.release.Name, expr, len(ss))
		}
		return ss[0].Value
	}
	// increase() over a window that holds the _created zero: no
	// extrapolation before a zero, and at most one scrape interval (1 s)
	// after the last sample against ≥ 10 s since _created: within 10 %.
	want := float64(len(added))
	if got := sum(plain, fmt.Sprintf(`sum(increase(%s[5m]))`, newHosts)); got != 0 {
		t.Errorf("without the feature: increase of the new hosts = %v, want 0 (the first sample is the baseline)", got)
	}
	if got := sum(ct, fmt.Sprintf(`sum(increase(%s[5m]))`, newHosts)); got < want || got > 1.1*want {
		t.Errorf("with created-timestamp-zero-ingestion: increase of the new hosts = %v, want the %v meetings they held", got, want)
	}
	for _, p := range []*promServer{plain, ct} {
		if got := sum(p, fmt.Sprintf(`sum(increase(%s[5m]))`, history)); got != 0 {
			t.Errorf("Prometheus %s %v: the history counted at the first start shows as an increase of %v", p.release.Name, p == ct, got)
		}
	}
}
