package e2e

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/internal/slapdtest"
	"github.com/umeeting/umeeting_exporter/simulator"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// person is one directory entry of these tests.
type person struct {
	dept, cc, licence string
}

// testDirectory assigns the simulator's hosts to departments: every 10th
// host is left out (it counts as "(unknown)"), and a few licence holders
// who are not hosts at all are added (they never meet).
func testDirectory(sim *simulator.Simulator) map[string]person {
	depts := []string{"Sales", "R&D (Beijing)", "Finance", "Support"}
	dir := map[string]person{}
	for i, h := range sim.Hosts() {
		if i%10 == 9 {
			continue
		}
		d := depts[i%len(depts)]
		dir[h.Email] = person{dept: d, cc: fmt.Sprintf("CC-%d", i%3), licence: h.UserType}
	}
	for i := range 3 {
		dir[fmt.Sprintf("never%d@example.com", i)] = person{dept: depts[i], cc: "CC-9", licence: "Pro"}
	}
	return dir
}

func writeDirectoryCSV(t *testing.T, path string, dir map[string]person) {
	t.Helper()
	var b strings.Builder
	b.WriteString("\xEF\xBB\xBFemail;department;cost_center;site;licence\n") // as Excel writes it
	for email, p := range dir {
		fmt.Fprintf(&b, "%s;%s;%s;Beijing;%s\n", strings.ToUpper(email[:1])+email[1:], p.dept, p.cc, p.licence)
	}
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// departmentTruth joins the simulator's ground truth with a directory as
// of when each meeting was counted: meetings listed after a move go to
// the new department (moves maps a uuid to the department to use).
func departmentTruth(sim *simulator.Simulator, dir map[string]person, moves map[string]string) map[string]totals {
	out := map[string]totals{}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		d := "(unknown)"
		if p, ok := dir[m.Email]; ok {
			d = p.dept
		}
		if md, ok := moves[m.UUID]; ok {
			d = md
		}
		tt := out[d]
		tt.add(&m)
		out[d] = tt
	}
	return out
}

func exportedDepartment(text, dept string) totals {
	return exportedUsage(text, "umeeting_department_", fmt.Sprintf("department=%q", dept))
}

// checkDepartments compares every department series with the truth.
func checkDepartments(t *testing.T, text string, want map[string]totals) {
	t.Helper()
	var sum float64
	for d, w := range want {
		if got := exportedDepartment(text, d); !got.equal(w) {
			t.Errorf("department %q: exported %+v, truth %+v", d, got, w)
		}
		sum += w.Meetings
	}
	if all, _ := sumMetric(text, "umeeting_department_meetings_total"); all != sum {
		t.Errorf("department series add up to %v meetings, truth %v (a department too many?)", all, sum)
	}
}

// waitDepartments waits until the department series add up to the
// truth (a scrape may see the account's usage a moment before its
// directory metrics), then checks every department.
func waitDepartments(t *testing.T, e *exporter, want map[string]totals) string {
	t.Helper()
	var sum float64
	for _, w := range want {
		sum += w.Meetings
	}
	var text string
	waitFor(t, 20*time.Second, "the department series to add up", func() bool {
		text = e.Metrics()
		v, _ := sumMetric(text, "umeeting_department_meetings_total")
		return v == sum
	})
	checkDepartments(t, text, want)
	return text
}

// neverMet counts the directory's licence holders without any meeting.
func neverMet(sim *simulator.Simulator, dir map[string]person) float64 {
	met := map[string]bool{}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		met[m.Email] = true
	}
	n := 0.0
	for email, p := range dir {
		if p.licence != "" && !met[email] {
			n++
		}
	}
	return n
}

func TestDirectoryCSVJoinAndMove(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "people.csv")
	people := testDirectory(sim)
	writeDirectoryCSV(t, csvPath, people)
	cfg := writeConfig(t, dir, apiURL, retries, `directory:
  file: people.csv
  refresh_interval: 1h
tariffs:
  currency: EUR
  monthly: {Corp: 20, Pro: 15}
  per_meeting_hour: 0.5
`)
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	waitExact(t, e, sim, "e2e")
	text := waitDepartments(t, e, departmentTruth(sim, people, nil))
	if v, _ := sumMetric(text, "umeeting_directory_up", `source="file"`); v != 1 {
		t.Errorf("umeeting_directory_up{source=file} = %v", v)
	}
	never, _ := sumMetric(text, "umeeting_directory_idle_licences", `idle="never"`)
	if want := neverMet(sim, people); never != want || never < 3 {
		t.Errorf("never-used licences = %v, want %v", never, want)
	}
	for i := range 3 {
		if v, ok := sumMetric(text, "umeeting_directory_idle_licence_last_meeting_timestamp_seconds", fmt.Sprintf(`email="never%d@example.com"`, i)); !ok || v != 0 {
			t.Errorf("never%d@example.com not listed as never used (%v, %v)", i, v, ok)
		}
	}
	if v, _ := sumMetric(text, "umeeting_chargeback_licence_monthly_cost", `currency="EUR"`); v == 0 {
		t.Error("no licence cost")
	}

	// The busiest host moves to a new department mid-test.
	counts := map[string]float64{}
	for _, m := range sim.Truth(time.Time{}, time.Now()) {
		if _, ok := people[m.Email]; ok {
			counts[m.Email]++
		}
	}
	mover := ""
	for email, n := range counts {
		if mover == "" || n > counts[mover] || (n == counts[mover] && email < mover) {
			mover = email
		}
	}
	from := people[mover].dept
	before := exportedDepartment(text, from)
	moves := map[string]string{} // the mover's meetings before the move stay where they were
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		if m.Email == mover {
			moves[m.UUID] = from
		}
	}
	p := people[mover]
	p.dept = "Moved Here"
	people[mover] = p
	writeDirectoryCSV(t, csvPath, people)
	e.MustReload()
	waitFor(t, 20*time.Second, "the moved person's licence in the new department", func() bool {
		v, _ := sumMetric(e.Metrics(), "umeeting_directory_licences", `department="Moved Here"`)
		return v == 1
	})
	// A move changes no past number.
	text = e.Metrics()
	if got := exportedDepartment(text, from); !got.equal(before) {
		t.Fatalf("the move changed %q: %+v, was %+v", from, got, before)
	}
	// The mover holds a new meeting: it goes to the new department, which
	// is first published at 0 so that increase() sees the meeting.
	now := time.Now()
	sim.Add(umeeting.Meeting{UUID: "after-move", ID: 4242, Host: "Mover", Email: mover, UserType: "Corp",
		Start: now.Add(-20 * time.Minute), End: now.Add(-time.Minute), Participants: 4, Features: umeeting.FeatureVideo})
	var seen []float64
	waitFor(t, 30*time.Second, "the new meeting in the new department", func() bool {
		v, ok := sumMetric(e.Metrics(), "umeeting_department_meetings_total", `department="Moved Here"`)
		if ok && (len(seen) == 0 || seen[len(seen)-1] != v) {
			seen = append(seen, v)
		}
		return v == 1
	})
	if seen[0] != 0 {
		t.Errorf("the new department was first published at %v, want 0 (values seen: %v)", seen[0], seen)
	}
	text = waitExact(t, e, sim, "e2e")
	if got := exportedDepartment(text, from); !got.equal(before) {
		t.Errorf("the new meeting changed %q: %+v, was %+v", from, got, before)
	}
	waitDepartments(t, e, departmentTruth(sim, people, moves))

	// The file breaks: the last copy stays, counting goes on.
	if err := os.WriteFile(csvPath, []byte("email,department\nx@example.com,Nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The reload says so: it answers once the directory was read.
	if code, body := e.Reload(); code != http.StatusInternalServerError || !strings.Contains(body, "missing column") {
		t.Errorf("a reload with a broken directory answered %d: %s", code, body)
	}
	waitFor(t, 20*time.Second, "umeeting_directory_up 0", func() bool {
		v, _ := sumMetric(e.Metrics(), "umeeting_directory_up", `source="file"`)
		return v == 0
	})
	sim.Add(umeeting.Meeting{UUID: "while-broken", ID: 4243, Host: "Mover", Email: mover, UserType: "Corp",
		Start: now.Add(-10 * time.Minute), End: now.Add(-30 * time.Second), Participants: 2})
	waitExact(t, e, sim, "e2e")
	text = waitDepartments(t, e, departmentTruth(sim, people, moves))
	if v, _ := sumMetric(text, "umeeting_department_meetings_total", `department="Moved Here"`); v != 2 {
		t.Errorf("with the file broken the mover's meeting went elsewhere: Moved Here = %v", v)
	}
	if !strings.Contains(e.Logs.String(), `missing column(s) [\"cost_center\" \"site\" \"licence\"]`) {
		t.Errorf("the reason is not in the log:\n%s", e.Logs.String())
	}
}

func TestDirectoryLDAPJoin(t *testing.T) {
	sim, apiURL := newSim(t, simulator.Options{})
	people := testDirectory(sim)
	const password = "e2e-LDAP-pa55word-42"
	var entries []slapdtest.Person
	uids := map[string]string{}
	i := 0
	for email, p := range people {
		uids[email] = fmt.Sprintf("u%03d", i)
		entries = append(entries, slapdtest.Person{UID: uids[email], Mail: strings.ToUpper(email[:1]) + email[1:],
			Department: p.dept, CostCenter: p.cc, Site: "Beijing", Licence: p.licence})
		i++
	}
	// More people than one search may return: the exporter must page.
	srv := slapdtest.Start(t, slapdtest.Options{People: entries, ServicePassword: password, SizeLimit: 50})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ldap.pw"), []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, apiURL, retries, fmt.Sprintf(`directory:
  refresh_interval: 1s
  ldap:
    url: %s
    start_tls: true
    bind_dn: %s
    bind_password_file: ldap.pw
    base_dn: %s
    filter: (&(objectClass=inetOrgPerson)(mail=*))
    page_size: 50
    timeout: 5s
    attributes: {email: mail, department: ou, cost_center: departmentNumber, site: l, licence: employeeType}
    tls_config: {ca_file: %s}
`, srv.URL, slapdtest.ServiceDN, slapdtest.PeopleDN, srv.CAFile))
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	text := waitExact(t, e, sim, "e2e")
	if v, _ := sumMetric(text, "umeeting_directory_entries", `source="ldap"`); v != float64(len(people)) {
		t.Fatalf("read %v people from slapd, want %d", v, len(people))
	}
	text = waitDepartments(t, e, departmentTruth(sim, people, nil))
	if never, _ := sumMetric(text, "umeeting_directory_idle_licences", `idle="never"`); never != neverMet(sim, people) {
		t.Errorf("never-used licences = %v, want %v", never, neverMet(sim, people))
	}
	ccWant := map[string]float64{}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		cc := "(unknown)"
		if p, ok := people[m.Email]; ok {
			cc = p.cc
		}
		ccWant[cc]++
	}
	for cc, n := range ccWant {
		if v, _ := sumMetric(text, "umeeting_cost_center_meetings_total", fmt.Sprintf("cost_center=%q", cc)); v != n {
			t.Errorf("cost centre %s: %v meetings, truth %v", cc, v, n)
		}
	}

	// A host moves to another department in LDAP: its past stays, its
	// next meeting goes to the new department.
	var mover string
	for _, m := range sim.Truth(time.Time{}, time.Now()) {
		if p, ok := people[m.Email]; ok && p.dept == "Support" && (mover == "" || m.Email < mover) {
			mover = m.Email
		}
	}
	supportBefore := exportedDepartment(text, "Support")
	moves := map[string]string{}
	for _, m := range sim.Truth(time.Time{}, time.Now().Add(time.Hour)) {
		if m.Email == mover {
			moves[m.UUID] = "Support"
		}
	}
	srv.Modify(t, uids[mover], map[string]string{"ou": "Finance"})
	p := people[mover]
	p.dept = "Finance"
	people[mover] = p
	waitFor(t, 20*time.Second, "the move read from LDAP", func() bool {
		text = e.Metrics()
		n := 0.0
		for _, q := range people {
			if q.dept == "Finance" && q.licence != "" {
				n++
			}
		}
		v, _ := sumMetric(text, "umeeting_directory_licences", `department="Finance"`)
		return v == n
	})
	if got := exportedDepartment(text, "Support"); !got.equal(supportBefore) {
		t.Fatalf("the LDAP move changed Support: %+v, was %+v", got, supportBefore)
	}
	now := time.Now()
	sim.Add(umeeting.Meeting{UUID: "ldap-moved", ID: 76, Host: "Mover", Email: mover, UserType: "Corp",
		Start: now.Add(-8 * time.Minute), End: now.Add(-2 * time.Minute), Participants: 2})
	waitExact(t, e, sim, "e2e")
	text = waitDepartments(t, e, departmentTruth(sim, people, moves))

	// slapd goes down: the last copy stays in use, counting goes on.
	srv.Stop()
	waitFor(t, 20*time.Second, "umeeting_directory_up{source=ldap} 0", func() bool {
		v, _ := sumMetric(e.Metrics(), "umeeting_directory_up", `source="ldap"`)
		return v == 0
	})
	var someone string
	for email, p := range people {
		if p.dept == "Finance" && (someone == "" || email < someone) {
			someone = email
		}
	}
	beforeFinance, _ := sumMetric(e.Metrics(), "umeeting_department_meetings_total", `department="Finance"`)
	sim.Add(umeeting.Meeting{UUID: "ldap-down", ID: 77, Host: "Someone", Email: someone, UserType: "Corp",
		Start: now.Add(-5 * time.Minute), End: now.Add(-time.Minute), Participants: 3})
	waitExact(t, e, sim, "e2e")
	text = waitDepartments(t, e, departmentTruth(sim, people, moves))
	if v, _ := sumMetric(text, "umeeting_department_meetings_total", `department="Finance"`); v != beforeFinance+1 {
		t.Errorf("with LDAP down: Finance %v, want %v", v, beforeFinance+1)
	}
	if n := strings.Count(e.Logs.String(), "Reading the directory failed"); n != 1 {
		t.Errorf("failure logged %d times over many failed reads, want once", n)
	}
	if strings.Contains(e.Logs.String(), password) {
		t.Fatal("the bind password is in the log")
	}
}

// TestDirectoryDemoCSVJoin runs the exporter on the demo company (the
// simulator with the demo's seed and size) with the directory --demo
// embeds: every department equals the truth joined with that file.
func TestDirectoryDemoCSVJoin(t *testing.T) {
	now := time.Now()
	sim := simulator.New(simulator.Options{Seed: 1, APIKey: testKey, APISecret: testSecret,
		HistoryStart: now.Add(-40 * time.Hour), HistoryEnd: now.Add(-10 * time.Minute)})
	apiURL, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	demo, err := directory.ParseCSV(bytes.NewReader(directory.DemoCSV), nil)
	if err != nil {
		t.Fatal(err)
	}
	people := map[string]person{}
	for _, e := range demo.Entries() {
		people[e.Email] = person{dept: e.Department, cc: e.CostCenter, licence: e.Licence}
	}
	// Who met in the window depends on the moment of the week: a meeting by
	// a host the directory leaves out and one by a holder of another
	// licence than the API's user_type give the join both to show.
	var added []umeeting.Meeting
	var out, other bool
	for _, h := range sim.Hosts() {
		p, listed := people[h.Email]
		switch {
		case h.UserType == "":
			continue
		case !listed && !out:
			out = true
		case listed && p.licence != "" && p.licence != h.UserType && !other:
			other = true
		default:
			continue
		}
		end := now.Add(-time.Hour).Truncate(time.Second)
		added = append(added, umeeting.Meeting{UUID: "dir-join-" + h.Email, ID: int64(8000 + len(added)), Host: h.Name, Email: h.Email,
			UserType: h.UserType, Start: end.Add(-30 * time.Minute), End: end, Participants: 4})
	}
	if !out || !other {
		t.Fatal("the demo directory should leave some hosts out and give some another licence than their user_type")
	}
	sim.Add(added...)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "demo.csv"), directory.DemoCSV, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, apiURL, retries, "directory: {file: demo.csv}\n")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	waitExact(t, e, sim, "e2e")
	want := departmentTruth(sim, people, nil)
	if _, ok := want["(unknown)"]; !ok || len(want) < 8 {
		t.Fatalf("the demo directory should leave some hosts out and cover the departments: %v", want)
	}
	text := waitDepartments(t, e, want)
	if never, _ := sumMetric(text, "umeeting_directory_idle_licences", `idle="never"`); never != neverMet(sim, people) || never < 24 {
		t.Errorf("never-used licences = %v, want %v (24 new hires at least)", never, neverMet(sim, people))
	}
	if v, _ := sumMetric(text, "umeeting_directory_licence_mismatches"); v == 0 {
		t.Error("the demo's mismatched licences are not reported")
	}
}

// TestDirectoryFileThatBlocks: a directory file whose read blocks (a FIFO
// without a writer, as a file of a hung network share) holds up neither
// the start, the polls, a reload nor SIGTERM: the source is down and the
// log and the reload answer say why.
func TestDirectoryFileThatBlocks(t *testing.T) {
	_, apiURL := newSim(t, simulator.Options{})
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "people.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, apiURL, retries, "directory:\n  file: people.csv\n  file_timeout: 1s\n  refresh_interval: 2s\n")
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	if code, _ := e.Get("/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy: HTTP %d", code)
	}
	waitFor(t, 20*time.Second, "a successful poll", func() bool { return upValue(e, "e2e") == 1 })
	text := e.Metrics()
	if v, ok := sumMetric(text, "umeeting_directory_up", `source="file"`); !ok || v != 0 {
		t.Errorf("umeeting_directory_up{source=file} = %v (present %v), want 0", v, ok)
	}
	if v, _ := sumMetric(text, "umeeting_config_last_reload_successful"); v != 0 {
		t.Error("umeeting_config_last_reload_successful is 1 while the directory does not read")
	}
	if !strings.Contains(e.Logs.String(), "timeout") {
		t.Errorf("the log does not say why the directory is down:\n%s", e.Logs.String())
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+e.Addr+"/-/reload", "", nil)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "directory") {
		t.Errorf("reload answered %d: %s", resp.StatusCode, body)
	}
	e.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("SIGTERM: still running after 5s\n%s", e.Logs.String())
	}
}

// TestConfigCheckReadsTheDirectory: --config.check fails on a directory
// file that is missing or lacks a column, and warns about licence types
// without a monthly tariff (tariffs match licence types whatever their
// case).
func TestConfigCheckReadsTheDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "http://127.0.0.1:1/h", "", "directory:\n  file: people.csv\ntariffs:\n  currency: EUR\n  monthly: {pro: 10}\n")
	out, err := checkConfig(cfg)
	if err == nil || !strings.Contains(string(out), "people.csv") || !strings.Contains(string(out), "no such file") {
		t.Errorf("a missing directory file: err=%v\n%s", err, out)
	}
	csv := filepath.Join(dir, "people.csv")
	os.WriteFile(csv, []byte("email,cost_center,site,licence\na@x.com,C,S,Pro\n"), 0o600)
	out, err = checkConfig(cfg)
	if err == nil || !strings.Contains(string(out), `missing column(s) ["department"]`) {
		t.Errorf("a file without the department column: err=%v\n%s", err, out)
	}
	os.WriteFile(csv, []byte("email,department,cost_center,site,licence\na@x.com,D,C,S,Pro\nb@x.com,D,C,S,Basic\n"), 0o600)
	out, err = checkConfig(cfg)
	if err != nil || !strings.Contains(string(out), `no price for licence type "Basic"`) || strings.Contains(string(out), `"Pro"`) {
		t.Errorf("licence types without a tariff: err=%v\n%s", err, out)
	}
}

// TestLicencesChargedOnceAcrossAccounts: two accounts and a CSV without
// an account column. Each licence is held by the account of its holder's
// latest meeting (none: the first account by name), so the queries of
// docs/directory.md, summing over accounts in Prometheus, charge every
// person once, and a holder who met in one account only is not idle.
func TestLicencesChargedOnceAcrossAccounts(t *testing.T) {
	now := time.Now()
	meet := func(id int64, email string, end time.Time) umeeting.Meeting {
		return umeeting.Meeting{UUID: fmt.Sprintf("m%d", id), ID: id, Host: email, Email: email, UserType: "Pro",
			Start: end.Add(-30 * time.Minute), End: end, Participants: 2}
	}
	simA, urlA := newSim(t, simulator.Options{NoGenerated: true})
	simA.Add(meet(1, "ann@example.com", now.Add(-time.Hour)))
	simZ, urlZ := newSim(t, simulator.Options{NoGenerated: true})
	simZ.Add(meet(2, "ann@example.com", now.Add(-3*time.Hour)), meet(3, "bob@example.com", now.Add(-2*time.Hour)))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "people.csv"), []byte("email,department,cost_center,site,licence\n"+
		"ann@example.com,Sales,CC-1,Beijing,Pro\nbob@example.com,Sales,CC-2,Beijing,Pro\ndan@example.com,Finance,CC-3,Beijing,Corp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, urlA, retries, fmt.Sprintf(`  - name: zeta
    api_url: %s
    api_key: %s
    api_secret: %s
    daily_request_budget: 0
%s
directory: {file: people.csv}
tariffs: {currency: EUR, monthly: {Pro: 10, Corp: 20}}
`, urlZ, testKey, testSecret, retries))
	e := startExporter(t, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"))
	var text string
	waitFor(t, 30*time.Second, "both accounts' meetings counted", func() bool {
		text = e.Metrics()
		a, _ := sumMetric(text, "umeeting_meetings_total", `account="e2e"`)
		z, _ := sumMetric(text, "umeeting_meetings_total", `account="zeta"`)
		return a == 1 && z == 2
	})
	// ann's latest meeting is in e2e, bob's in zeta; dan never met: the
	// first account by name, e2e, holds his licence.
	for _, c := range []struct {
		name     string
		matchers []string
		want     float64
	}{
		{"umeeting_directory_licences", nil, 3},
		{"umeeting_directory_licences", []string{`account="e2e"`, `department="Sales"`}, 1},
		{"umeeting_directory_licences", []string{`account="e2e"`, `department="Finance"`}, 1},
		{"umeeting_directory_licences", []string{`account="zeta"`, `department="Sales"`}, 1},
		{"umeeting_directory_licences", []string{`account="zeta"`, `department="Finance"`}, 0},
		{"umeeting_directory_idle_licences", []string{`idle="never"`}, 1},
		{"umeeting_directory_idle_licences", []string{`account="e2e"`, `department="Finance"`, `idle="never"`}, 1},
		{"umeeting_chargeback_licence_monthly_cost", nil, 40},
	} {
		if got, _ := sumMetric(text, c.name, c.matchers...); got != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.matchers, got, c.want)
		}
	}

	// The queries of docs/directory.md, in Prometheus.
	p := startPrometheus(t, prometheusReleases(t)[0], promConfig{targets: []string{e.Addr}})
	chargeback := `sum by (cost_center, currency) (max without (instance) (umeeting_chargeback_licence_monthly_cost))`
	waitFor(t, 30*time.Second, "the chargeback in Prometheus", func() bool { return p.value(chargeback) != "" })
	got := map[string]float64{}
	for _, s := range p.query(t, chargeback, time.Time{}) {
		got[s.Metric["cost_center"]+" "+s.Metric["currency"]] = s.Value
	}
	if w := map[string]float64{"CC-1 EUR": 10, "CC-2 EUR": 10, "CC-3 EUR": 20}; !maps.Equal(got, w) {
		t.Errorf("%s = %v, want %v (one licence each)", chargeback, got, w)
	}
	idleShare := `sum by (department) (max without (instance) (umeeting_directory_idle_licences{idle=~"never|30d"}))
  / sum by (department) (max without (instance) (umeeting_directory_licences))`
	got = map[string]float64{}
	for _, s := range p.query(t, idleShare, time.Time{}) {
		got[s.Metric["department"]] = s.Value
	}
	if w := map[string]float64{"Sales": 0, "Finance": 1}; !maps.Equal(got, w) {
		t.Errorf("share of licences idle by department = %v, want %v (ann and bob met, dan never)", got, w)
	}
}
