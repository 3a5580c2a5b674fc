package simulator

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	jsonType          = "application/json; charset=utf-8"
	textType          = "text/plain; charset=utf-8"
	msgBadCredentials = "invalid api_key or api_secret"
	dateLayout        = "2006-01-02"
)

// ServeHTTP serves the API at /umeeting/share/hisMeeting and, for the
// demo, /-/fault to make it fail.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case APIPath:
		s.serveAPI(w, r)
	case "/-/fault":
		s.serveFault(w, r)
	case "/":
		writeBody(w, http.StatusOK, textType, []byte("UMeeting API simulator\n\n"+
			"POST|GET "+APIPath+"  api_key, api_secret, from, to (YYYY-MM-DD), page_size, page_number\n"+
			"POST /-/fault?kind=...&count=N&delay=D  inject a fault (kind=none clears)\n"))
	default:
		http.NotFound(w, r)
	}
}

// serveAPI answers hisMeeting: faults first (they come from the
// infrastructure in front of the application), then the application.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if !allowMethods(w, r, http.MethodPost, http.MethodGet) {
		return
	}
	if err := r.ParseForm(); err != nil {
		writeBody(w, http.StatusOK, jsonType, envelopeError(400, "malformed request parameters"))
		return
	}
	page := 1
	if n, err := strconv.Atoi(strings.TrimSpace(r.Form.Get("page_number"))); err == nil && n > 0 {
		page = n
	}
	f, htmlHit, faulted := s.takeFault()
	if faulted {
		if f.Kind == FaultSlow && !sleepCtx(r.Context(), f.delay()) {
			return
		}
		if writeFault(w, f, htmlHit) {
			return
		}
	}
	body := s.answer(r.Form, page)
	if faulted && f.Kind == FaultTruncated {
		body = truncate(body)
	}
	writeBody(w, http.StatusOK, jsonType, body)
}

// answer is the application's answer to valid HTTP: an error envelope or a
// page of the listing.
func (s *Simulator) answer(form url.Values, page int) []byte {
	keyOK := subtle.ConstantTimeCompare([]byte(form.Get("api_key")), []byte(s.opts.APIKey))
	secretOK := subtle.ConstantTimeCompare([]byte(form.Get("api_secret")), []byte(s.opts.APISecret))
	if keyOK&secretOK != 1 {
		return envelopeError(401, msgBadCredentials)
	}
	from, err := s.parseDate(form, "from")
	if err != nil {
		return envelopeError(400, err.Error())
	}
	to, err := s.parseDate(form, "to")
	if err != nil {
		return envelopeError(400, err.Error())
	}
	// The vendor's one-month cap: silently only the last month.
	if to.After(from.AddDate(0, 1, 0)) {
		from = to.AddDate(0, -1, 0)
	}
	es := s.listing(s.dayOf(from), s.dayOf(to), s.now())

	lo, hi := 0, len(es)
	size := 30
	if !s.opts.DisablePaging {
		if n, err := strconv.Atoi(strings.TrimSpace(form.Get("page_size"))); err == nil && n > 0 {
			size = min(n, maxPageSize)
		}
		lo = len(es)
		if page <= (len(es)+size-1)/size {
			lo = (page - 1) * size
		}
		hi = min(lo+size, len(es))
	}
	b := make([]byte, 0, 256+(hi-lo)*420)
	b = append(b, `{"status":200,"message":"OK"`...)
	if !s.opts.DisablePaging {
		b = fmt.Appendf(b, `,"page_count":%d,"page_number":%d,"page_size":%d,"total_records":%d`,
			(len(es)+size-1)/size, page, size, len(es))
	}
	b = append(b, `,"data":[`...)
	for i := lo; i < hi; i++ {
		if i > lo {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = appendEntry(b, &es[i])
	}
	if hi > lo {
		b = append(b, '\n')
	}
	return append(b, "]}\n"...)
}

// parseDate reads a YYYY-MM-DD parameter as local midnight. The message
// never echoes the request: it may carry anything, the secret included.
func (s *Simulator) parseDate(form url.Values, name string) (time.Time, error) {
	v := strings.TrimSpace(form.Get(name))
	if v == "" {
		return time.Time{}, fmt.Errorf("missing parameter %s (YYYY-MM-DD)", name)
	}
	t, err := time.ParseInLocation(dateLayout, v, s.loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid parameter %s, want YYYY-MM-DD", name)
	}
	return t, nil
}

// envelopeError is the vendor's error answer.
func envelopeError(status int, msg string) []byte {
	b := fmt.Appendf(nil, `{"status":%d,"message":`, status)
	b = appendString(b, msg)
	return append(b, "}\n"...)
}

func writeBody(w http.ResponseWriter, code int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do.
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeBody(w, http.StatusMethodNotAllowed, textType, []byte("method not allowed\n"))
	return false
}

// sleepCtx waits d, or less when ctx ends; it reports whether it waited d.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveFault sets the fault.
func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	f, err := parseFault(r)
	if err != nil {
		writeBody(w, http.StatusBadRequest, textType, []byte(err.Error()+"\n"))
		return
	}
	s.SetFault(f)
	writeBody(w, http.StatusOK, textType, []byte("ok: "+f.String()+"\n"))
}

// parseFault reads kind, count and delay from the query or form.
func parseFault(r *http.Request) (Fault, error) {
	var f Fault
	f.Kind = FaultKind(strings.TrimSpace(r.FormValue("kind")))
	if !slices.Contains(faultKinds, f.Kind) {
		names := make([]string, len(faultKinds))
		for i, k := range faultKinds {
			names[i] = string(k)
		}
		return f, fmt.Errorf("bad kind %q: want one of %s", f.Kind, strings.Join(names, ", "))
	}
	var err error
	if f.Count, err = nonNegative(r, "count"); err != nil {
		return f, err
	}
	if v := strings.TrimSpace(r.FormValue("delay")); v != "" {
		if f.Delay, err = time.ParseDuration(v); err != nil || f.Delay < 0 {
			return f, fmt.Errorf("bad delay %q: want a duration such as 2s", v)
		}
	}
	return f, nil
}

func nonNegative(r *http.Request, name string) (int, error) {
	v := strings.TrimSpace(r.FormValue(name))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad %s %q: want an integer >= 0", name, v)
	}
	return n, nil
}
