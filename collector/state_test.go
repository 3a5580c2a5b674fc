package collector

import (
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/umeeting/umeeting_exporter/store"
	"github.com/umeeting/umeeting_exporter/store/storetest"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// TestTamperedStatesNeverPanic is the storage attack of issue #7 through the
// path a start takes: a state file with a valid checksum but tampered
// content is loaded and exported. client_golang panics on a label that is
// not UTF-8, so before states were validated on load, one mutation in
// eight crash-looped the exporter. Every mutation must now either be set
// aside or export cleanly.
func TestTamperedStatesNeverPanic(t *testing.T) {
	dir := t.TempDir()
	s, _ := store.Open(dir, "acme")
	b := s.NewBatch(s.Window(t0, 48*time.Hour, 30*24*time.Hour))
	for i, h := range []struct{ email, host, ut string }{
		{"li.lei@例子.cn", "李 雷", "企业版"}, {"ann@x.com", "Ann Müller", "Corp"}, {"bob@x.com", "Bob", "Pro"},
	} {
		b.Meeting(&umeeting.Meeting{UUID: "u" + h.email, Email: h.email, Host: h.host, UserType: h.ut,
			Start: t0.Add(-time.Duration(i+2) * time.Hour), End: t0.Add(-time.Duration(i+1) * time.Hour), Participants: 2 + i})
	}
	b.Invalid(umeeting.ReasonMissingUUID, []byte(`{}`))
	b.CommitPage()
	s.Apply(b)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(20000, 2490))
	var exported, setAside int
	for range 2000 {
		os.WriteFile(s.Path(), storetest.Mutate(good, rng), 0o600)
		st, info := store.Open(dir, "acme")
		if info.LoadError != nil {
			os.Remove(info.SetAside)
			setAside++
			continue
		}
		c := New()
		c.SetUsage("acme", st.Snapshot(t0), Options{PerHost: true})
		served(t, c) // fails the test on an answer that is not 200 or does not parse
		exported++
	}
	t.Logf("%d mutations exported, %d set aside", exported, setAside)
	if exported == 0 || setAside == 0 {
		t.Error("the mutations do not exercise both outcomes")
	}
}
