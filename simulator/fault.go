package simulator

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// FaultKind is a way the API can fail, as hosted APIs do in practice.
type FaultKind string

// The faults SetFault and POST /-/fault can inject.
const (
	FaultNone      FaultKind = "none"
	FaultHTTP500   FaultKind = "http_500"       // HTTP 500 with a text body
	FaultEnvelope  FaultKind = "envelope_error" // HTTP 200, {"status":500,"message":"internal error"}
	FaultAuth      FaultKind = "auth_error"     // HTTP 200, {"status":401,...}
	FaultZoomError FaultKind = "zoom_error"     // HTTP 200, {"error":{"code":124,"message":"Invalid api key."}}
	FaultRateLimit FaultKind = "rate_limit"     // HTTP 429, Retry-After: 1
	FaultGarbage   FaultKind = "garbage"        // HTTP 200, bytes that are not JSON
	FaultHTML      FaultKind = "html"           // HTTP 502 or 200 with an HTML error page, alternately
	FaultTruncated FaultKind = "truncated"      // a valid answer cut in the middle of data
	FaultEmpty     FaultKind = "empty"          // HTTP 200 with an empty body
	FaultNoData    FaultKind = "no_data"        // HTTP 200, {"status":200,"data":null}: a valid answer listing nothing
	FaultSlow      FaultKind = "slow"           // wait Delay before answering normally
)

// faultKinds lists every kind, FaultNone first.
var faultKinds = []FaultKind{FaultNone, FaultHTTP500, FaultEnvelope, FaultAuth, FaultZoomError, FaultRateLimit,
	FaultGarbage, FaultHTML, FaultTruncated, FaultEmpty, FaultNoData, FaultSlow}

// defaultSlowDelay is how long FaultSlow waits when Delay is zero: longer
// than any sane client time-out.
const defaultSlowDelay = 30 * time.Second

// Fault makes API requests fail.
type Fault struct {
	Kind  FaultKind
	Count int           // the next Count matching API requests fail; 0 = until cleared
	Delay time.Duration // FaultSlow only; 0 = defaultSlowDelay
}

func (f Fault) String() string {
	if f.Kind == "" || f.Kind == FaultNone {
		return "no fault"
	}
	s := fmt.Sprintf("fault %s", f.Kind)
	if f.Count > 0 {
		s += fmt.Sprintf(", next %d requests", f.Count)
	} else {
		s += ", until cleared"
	}
	if f.Kind == FaultSlow {
		s += fmt.Sprintf(", delay %s", f.delay())
	}
	return s
}

func (f Fault) delay() time.Duration {
	if f.Delay > 0 {
		return f.Delay
	}
	return defaultSlowDelay
}

// SetFault replaces the current fault; Kind FaultNone (or "") clears it.
// An unknown kind clears it too.
func (s *Simulator) SetFault(f Fault) {
	if !slices.Contains(faultKinds, f.Kind) {
		f.Kind = FaultNone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.faultLeft = f, f.Count
}

// takeFault decides whether an API request fails, and how; a counted
// fault is used up here.
func (s *Simulator) takeFault() (f Fault, htmlHit int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f = s.fault
	if f.Kind == "" || f.Kind == FaultNone {
		return Fault{}, 0, false
	}
	if f.Count > 0 {
		s.faultLeft--
		if s.faultLeft <= 0 {
			s.fault = Fault{Kind: FaultNone}
		}
	}
	if f.Kind == FaultHTML {
		s.htmlHits++
	}
	return f, s.htmlHits, true
}

const (
	badGatewayPage  = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	maintenancePage = "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>系统维护</title></head>\n" +
		"<body><h1>系统维护中</h1><p>The service is under maintenance. Please try again later.</p></body></html>\n"
	garbageBody = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xfe{{status: ok]]\x00\x01\x02 not json"
)

// writeFault answers a request with fault f; it reports false for faults
// that only alter a normal answer (slow, truncated).
func writeFault(w http.ResponseWriter, f Fault, htmlHit int) bool {
	switch f.Kind {
	case FaultHTTP500:
		writeBody(w, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("500 Internal Server Error\n"))
	case FaultEnvelope:
		writeBody(w, http.StatusOK, jsonType, envelopeError(500, "internal error"))
	case FaultAuth:
		writeBody(w, http.StatusOK, jsonType, envelopeError(401, msgBadCredentials))
	case FaultZoomError:
		writeBody(w, http.StatusOK, jsonType, []byte(`{"error":{"code":124,"message":"Invalid api key."}}`))
	case FaultRateLimit:
		w.Header().Set("Retry-After", "1")
		writeBody(w, http.StatusTooManyRequests, jsonType, envelopeError(429, "too many requests, please retry later"))
	case FaultGarbage:
		writeBody(w, http.StatusOK, jsonType, []byte(garbageBody))
	case FaultHTML:
		if htmlHit%2 == 1 {
			writeBody(w, http.StatusBadGateway, "text/html", []byte(badGatewayPage))
		} else {
			writeBody(w, http.StatusOK, "text/html; charset=utf-8", []byte(maintenancePage))
		}
	case FaultEmpty:
		writeBody(w, http.StatusOK, jsonType, nil)
	case FaultNoData:
		writeBody(w, http.StatusOK, jsonType, []byte(`{"status":200,"message":"OK","data":null}`))
	default:
		return false
	}
	return true
}

// truncate cuts a valid answer in the middle of its data.
func truncate(body []byte) []byte {
	i := bytes.Index(body, []byte(`"data":[`)) + len(`"data":[`)
	return body[:i+(len(body)-i)/2]
}
