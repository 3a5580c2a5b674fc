package collector

import (
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/procfs"
)

// processCollector serves client_golang's process metrics but for the
// network counters, from one read of /proc/self/stat and two system calls
// per scrape: the network counters read /proc/self/net/netstat, which cost
// more than the rest of a gzip scrape at 10,000 hosts together.
type processCollector struct {
	proc      procfs.Proc
	startTime float64
}

var (
	processCPU      = prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil)
	processOpenFDs  = prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil)
	processMaxFDs   = prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil)
	processVsize    = prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil)
	processMaxVsize = prometheus.NewDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", nil, nil)
	processRSS      = prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil)
	processStart    = prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil)
)

// NewProcessCollector returns the collector of the exporter's process
// metrics (client_golang's where /proc cannot be read).
func NewProcessCollector() prometheus.Collector {
	p, err := procfs.Self()
	if err != nil {
		return collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
	}
	c := &processCollector{proc: p}
	if st, err := p.Stat(); err == nil {
		c.startTime, _ = st.StartTime()
	}
	return c
}

func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{processCPU, processOpenFDs, processMaxFDs, processVsize, processMaxVsize, processRSS, processStart} {
		ch <- d
	}
}

func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	if st, err := c.proc.Stat(); err == nil {
		ch <- prometheus.MustNewConstMetric(processCPU, prometheus.CounterValue, st.CPUTime())
		ch <- prometheus.MustNewConstMetric(processVsize, prometheus.GaugeValue, float64(st.VirtualMemory()))
		ch <- prometheus.MustNewConstMetric(processRSS, prometheus.GaugeValue, float64(st.ResidentMemory()))
	}
	ch <- prometheus.MustNewConstMetric(processStart, prometheus.GaugeValue, c.startTime)
	if n, err := c.proc.FileDescriptorsLen(); err == nil {
		ch <- prometheus.MustNewConstMetric(processOpenFDs, prometheus.GaugeValue, float64(n))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		ch <- prometheus.MustNewConstMetric(processMaxFDs, prometheus.GaugeValue, float64(lim.Cur))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		ch <- prometheus.MustNewConstMetric(processMaxVsize, prometheus.GaugeValue, float64(lim.Cur))
	}
}
