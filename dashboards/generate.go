// Package dashboards holds the Grafana dashboards of umeeting_exporter and
// the Go code, written with the Grafana Foundation SDK, that generates them
// (`go generate ./...` writes the JSON files). Users import or provision the
// plain JSON files (Grafana 10, 11 and 12; deploy/ provisions them); the
// tests check their structure, that they are what the code writes, and
// e2e/ runs every query against a real Prometheus scraping the exporter.
// Nothing in the exporter imports this package.
package dashboards

//go:generate go run ./gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// page is one dashboard and the file it is written to.
type page struct {
	file  string
	build func() *dashboard.DashboardBuilder
}

// pages are the dashboards, one Go file each.
var pages = []page{
	{"umeeting-usage.json", usage},
	{"umeeting-hosts.json", hosts},
	{"umeeting-departments.json", departments},
	{"umeeting-exporter-health.json", health},
}

// schemaVersion is the dashboard schema Grafana 10 to 12 all read without
// migrating (the SDK writes its own, newer one).
const schemaVersion = 39

// Files returns the JSON of every dashboard by file name, as committed.
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, p := range pages {
		d, err := p.build().Build()
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", p.file, err)
		}
		finish(&d)
		b, err := render(d)
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", p.file, err)
		}
		out[p.file] = b
	}
	return out, nil
}

// finish numbers the panels in reading order, sets every panel's
// datasource (the variable) and the schema version: what the SDK leaves to
// the caller. It also puts the links and the annotation toggle back in
// their usual place: the SDK moves them into Grafana 12's controls menu,
// where the dashboards' links would no longer show above the panels.
func finish(d *dashboard.Dashboard) {
	d.SchemaVersion = schemaVersion
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	for i := range d.Panels {
		id := uint32(i + 1)
		switch p := d.Panels[i]; {
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		case p.Panel != nil:
			p.Panel.Id = &id
			p.Panel.Datasource = &promDS
		}
	}
}

// render writes d as indented JSON. The SDK's own marshallers escape <, >
// and & (as \u003c…); they are written as themselves so that the queries
// in the files read as PromQL, and the result must decode to the same value.
func render(d dashboard.Dashboard) ([]byte, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	unescaped := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(raw))
	var a, b any
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(unescaped), &b); err != nil {
		return nil, fmt.Errorf("unescaping <, > and &: %w", err)
	}
	if !reflect.DeepEqual(a, b) {
		return nil, fmt.Errorf("unescaping <, > and & changed the dashboard")
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(unescaped), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
