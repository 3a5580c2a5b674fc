package serve

import (
	"net/http"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Limits bound what scrapers, hostile or slow, can make the exporter hold:
// each scrape holds a full copy of the metrics (tens of MB at 10,000
// hosts) until it is written out.
type Limits struct {
	// MaxRequests is promhttp's MaxRequestsInFlight: scrapes beyond it are
	// answered 503 at once. 0: no limit.
	MaxRequests int
	// ScrapeTimeout is how long one scrape may take, gathering and writing
	// included; a client that does not read is cut off then, freeing its
	// slot and its memory. 0: none.
	ScrapeTimeout time.Duration
	// WriteTimeout and IdleTimeout are the http.Server's, for every path.
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
}

// AddFlags registers the --web.* limit flags on app.
func AddFlags(app interface {
	Flag(name, help string) *kingpin.FlagClause
}) *Limits {
	l := &Limits{}
	app.Flag("web.max-requests", "Most scrapes served at once; more are answered 503. Each holds a copy of the metrics until it is sent. 0 disables the limit.").
		Default("5").IntVar(&l.MaxRequests)
	app.Flag("web.scrape-timeout", "Longest time to gather and send one scrape; a client that does not read is disconnected then. 0 disables it.").
		Default("30s").DurationVar(&l.ScrapeTimeout)
	app.Flag("web.write-timeout", "Longest time to write any HTTP answer (other than scrapes, see --web.scrape-timeout). 0 disables it.").
		Default("30s").DurationVar(&l.WriteTimeout)
	app.Flag("web.idle-timeout", "How long an idle keep-alive connection is kept open. 0 disables it.").
		Default("2m").DurationVar(&l.IdleTimeout)
	return l
}

// Apply sets the server's timeouts.
func (l *Limits) Apply(srv *http.Server) {
	srv.WriteTimeout, srv.IdleTimeout = l.WriteTimeout, l.IdleTimeout
}

// Scrape bounds each request of the metrics handler h by ScrapeTimeout: a
// write deadline on the connection, so that a write blocked by a client
// that never reads fails then, the handler returns and its in-flight slot
// is freed. (promhttp's own Timeout would not do: it buffers the whole
// answer and writes it after releasing the slot, so slow clients would
// again hold a copy each.)
func (l *Limits) Scrape(h http.Handler) http.Handler {
	if l.ScrapeTimeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An error means the writer cannot set deadlines (not a net/http
		// connection): serve without one.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(l.ScrapeTimeout))
		h.ServeHTTP(w, r)
	})
}
