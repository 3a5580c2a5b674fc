package directory

import (
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"testing"

	"github.com/umeeting/umeeting_exporter/simulator"
)

var update = flag.Bool("update", false, "rewrite demo_directory.csv from the simulator's demo company")

// Demo directory layout: departments with their cost centres.
var demoDepartments = []struct{ name, cc string }{
	{"Sales", "CC-110"}, {"Engineering", "CC-120"}, {"R&D (Beijing)", "CC-121"}, {"Finance", "CC-130"},
	{"Human Resources", "CC-140"}, {"Marketing", "CC-150"}, {"Operations", "CC-160"}, {"Customer Support", "CC-170"},
}

var demoSites = []string{"Beijing", "Shanghai", "Shenzhen"}

func demoHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// DemoHolders is the number of licence holders in the demo directory who
// are not hosts of the simulator, so never hold a meeting.
const demoNeverMet = 24

// buildDemoCSV derives the demo directory from the simulator's company.
func buildDemoCSV() []byte {
	var b bytes.Buffer
	b.WriteString("email,department,cost_center,site,licence,name\n")
	row := func(email, dept, cc, site, licence, name string) {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s\n", email, csvField(dept), cc, site, licence, csvField(name))
	}
	sim := simulator.New(simulator.Options{Seed: 1})
	for _, h := range sim.Hosts() {
		x := demoHash(h.Email)
		if x%20 == 1 {
			continue // not in the directory: "(unknown)"
		}
		d := demoDepartments[x%uint32(len(demoDepartments))]
		if strings.HasPrefix(h.Email, "room") {
			d = struct{ name, cc string }{"Facilities", "CC-190"}
		}
		licence := h.UserType
		if x%25 == 3 { // the directory says otherwise than the API
			licence = map[bool]string{true: "Corp", false: "Pro"}[licence == "Pro"]
		}
		row(h.Email, d.name, d.cc, demoSites[(x>>8)%3], licence, h.Name)
	}
	for i := range demoNeverMet {
		d := demoDepartments[i%len(demoDepartments)]
		row(fmt.Sprintf("new.hire%02d@example.com", i+1), d.name, d.cc, demoSites[i%3], []string{"Pro", "Corp", "Basic"}[i%3],
			fmt.Sprintf("New Hire %02d", i+1))
	}
	for i := range 10 { // staff without a licence
		d := demoDepartments[i%len(demoDepartments)]
		row(fmt.Sprintf("staff%02d@example.com", i+1), d.name, d.cc, demoSites[i%3], "", fmt.Sprintf("Staff %02d", i+1))
	}
	return b.Bytes()
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n;") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func TestDemoCSV(t *testing.T) {
	want := buildDemoCSV()
	if *update {
		if err := os.WriteFile("demo_directory.csv", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(DemoCSV, want) {
		t.Fatal("demo_directory.csv is not what the simulator's company gives: go test ./directory -run TestDemoCSV -update")
	}
	d, err := ParseCSV(bytes.NewReader(DemoCSV), nil)
	if err != nil {
		t.Fatal(err)
	}
	never := 0
	for _, e := range d.Entries() {
		if strings.HasPrefix(e.Email, "new.hire") && e.Licence != "" {
			never++
		}
	}
	if never != demoNeverMet || d.Duplicates != 0 {
		t.Errorf("%d never-met holders, %d duplicates", never, d.Duplicates)
	}
}
