// Package logging builds the exporter's one log stream: go-kit loggers for
// the exporter's own lines, and an slog logger for the exporter toolkit and
// promhttp that writes the same keys (ts, caller, level, msg) through the
// same go-kit output, so one stream never mixes two styles.
package logging

import (
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	sloggokit "github.com/tjhop/slog-gokit"
)

// timestampFormat is go-kit's DefaultTimestampUTC format.
const timestampFormat = time.RFC3339Nano

// New returns the go-kit logger of the exporter and an slog logger for
// libraries, both writing lines that start with the keys level, ts and
// caller (go-kit's level.Info puts level first) and carry msg, at or above lvl (debug, info, warn, error) in format (logfmt
// or json) to w.
func New(w io.Writer, lvl, format string) (log.Logger, *slog.Logger) {
	var out log.Logger
	if format == "json" {
		out = log.NewJSONLogger(log.NewSyncWriter(w))
	} else {
		out = log.NewLogfmtLogger(log.NewSyncWriter(w))
	}
	out = level.NewFilter(out, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	var slogLevel slog.Level
	if err := slogLevel.UnmarshalText([]byte(strings.ToUpper(lvl))); err != nil {
		slogLevel = slog.LevelInfo
	}
	return log.With(out, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller),
		slog.New(sloggokit.NewGoKitHandler(slogStyle{out}, slogLevel))
}

// slogStyle rewrites the pairs of slog-gokit (level, caller, time, msg,
// attributes) into the exporter's order and keys (level, ts, caller, msg,
// attributes), the time formatted as go-kit formats it.
type slogStyle struct{ next log.Logger }

func (s slogStyle) Log(keyvals ...any) error {
	var ts, caller, lvl any = time.Now().UTC().Format(timestampFormat), "unknown", level.InfoValue()
	rest := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch k, v := keyvals[i], keyvals[i+1]; k {
		case slog.TimeKey:
			if t, ok := v.(time.Time); ok {
				ts = t.UTC().Format(timestampFormat)
			}
		case "caller":
			caller = v
		case level.Key():
			lvl = v
		default:
			rest = append(rest, k, v)
		}
	}
	return s.next.Log(append([]any{level.Key(), lvl, "ts", ts, "caller", caller}, rest...)...)
}

// ScrapeErrorLog is promhttp's error log: a client that goes away during a
// scrape (broken pipe, connection reset) is the client's business and is
// logged at debug level; anything else is an error.
type ScrapeErrorLog struct{ Logger log.Logger }

// Println implements promhttp.Logger.
func (l ScrapeErrorLog) Println(v ...any) {
	lvl := level.Error
	for _, a := range v {
		if err, ok := a.(error); ok && ClientGone(err) {
			lvl = level.Debug
		}
	}
	lvl(l.Logger).Log("msg", "Serving metrics failed", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// ClientGone says whether err means the other end closed the connection.
func ClientGone(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// ServerErrorLog returns a standard library logger for http.Server's own
// errors (TLS handshakes, accept errors), written in the same style at
// warn level.
func ServerErrorLog(logger log.Logger) *stdlog.Logger {
	return stdlog.New(log.NewStdlibAdapter(level.Warn(logger)), "", 0)
}
