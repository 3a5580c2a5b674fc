package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/poller"
)

// TestConcurrentReloads sends reloads from two goroutines at once, as a
// SIGHUP and a POST /-/reload can; under the race detector it fails if
// reloads share state unguarded.
func TestConcurrentReloads(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":200,"message":"OK","data":[]}`)
	}))
	defer api.Close()
	dir := t.TempDir()
	var mu sync.Mutex
	n := 0
	load := func() (*config.Config, error) {
		mu.Lock()
		n++
		interval := 10 + n%2 // each reload changes the config
		mu.Unlock()
		cfg, err := config.Decode([]byte(fmt.Sprintf("poll_interval: %ds\naccounts:\n  - name: acme\n    api_url: %s\n    api_key: k\n    api_secret: s\n", interval, api.URL)), dir)
		if err == nil {
			err = cfg.Validate()
		}
		return cfg, err
	}
	logger := log.NewNopLogger()
	coll := collector.New()
	inst := collector.NewInstruments(prometheus.NewRegistry())
	manager := poller.NewManager(dir, coll, inst, logger)
	defer manager.Stop()
	dirs := directory.NewManager(logger, coll.SetDirectory)
	defer dirs.Stop()
	manager.SetAttributor(dirs)
	r := &reloader{load: load, manager: manager, dirs: dirs, inst: inst, logger: logger}

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				errs <- r.reload()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("reload: %v", err)
		}
	}
	if v := testutil.ToFloat64(inst.ReloadSuccess); v != 1 {
		t.Errorf("umeeting_config_last_reload_successful = %v, want 1", v)
	}
}
