package main

import (
	"fmt"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/directory"
	"github.com/umeeting/umeeting_exporter/poller"
)

// reloader applies the configuration at start, on SIGHUP and on
// POST /-/reload. Those may come at once, so one reload runs at a time.
type reloader struct {
	load    func() (*config.Config, error)
	manager *poller.Manager
	dirs    *directory.Manager
	inst    *collector.Instruments
	logger  log.Logger

	mu      sync.Mutex
	started bool // a configuration was applied
}

// reload loads and applies the configuration; a bad one changes nothing.
// It returns once the directory was read: a directory that fails to read
// makes the reload fail too (the rest of the configuration is applied,
// and the directory keeps its last good copy).
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.load()
	var dirErr error
	if err == nil && !r.started {
		// Read the directory before the first poll joins with it.
		dirErr = r.dirs.Apply(cfg)
	}
	if err == nil {
		err = r.manager.Apply(cfg)
	}
	if err == nil && r.started {
		dirErr = r.dirs.Apply(cfg)
	}
	r.started = r.started || err == nil
	if err != nil {
		err = config.RedactError(err) // for the log and the /-/reload answer
		r.inst.ReloadSuccess.Set(0)
		level.Error(r.logger).Log("msg", "Loading configuration failed; keeping the previous one", "err", err)
		return err
	}
	for _, w := range cfg.Warnings() {
		level.Warn(r.logger).Log("msg", "Configuration will not work as meant", "warning", w)
	}
	if dirErr != nil {
		r.inst.ReloadSuccess.Set(0)
		level.Error(r.logger).Log("msg", "Configuration loaded, but the directory could not be read; its last good copy stays in use", "accounts", len(cfg.Accounts))
		return fmt.Errorf("configuration applied, but the directory could not be read (its last good copy stays in use): %w", dirErr)
	}
	r.inst.ReloadSuccess.Set(1)
	r.inst.ReloadTimestamp.SetToCurrentTime()
	level.Info(r.logger).Log("msg", "Configuration loaded", "accounts", len(cfg.Accounts))
	return nil
}
