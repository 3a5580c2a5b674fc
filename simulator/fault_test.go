package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFaultKinds(t *testing.T) {
	s, api := serve(t, Options{Seed: 1, Now: newClock(t0).Now})
	v := params(weekAgo, today, "page_size", "50")
	normal := post(t, api, v)
	ok(t, normal)
	notJSON := func(t *testing.T, a answer) {
		if json.Valid(a.Body) {
			t.Errorf("body is valid JSON: %.200s", a.Body)
		}
	}
	envelopeStatus := func(status int) func(*testing.T, answer) {
		return func(t *testing.T, a answer) {
			if !a.JSONok || a.Env.Status == nil || *a.Env.Status != status || a.Env.Message == "" || a.Env.Data != nil {
				t.Errorf("want an envelope with status %d, got %s", status, a.Body)
			}
		}
	}
	for _, c := range []struct {
		fault Fault
		code  int
		check func(*testing.T, answer)
	}{
		{Fault{Kind: FaultHTTP500}, 500, notJSON},
		{Fault{Kind: FaultEnvelope}, 200, envelopeStatus(500)},
		{Fault{Kind: FaultAuth}, 200, envelopeStatus(401)},
		{Fault{Kind: FaultZoomError}, 200, func(t *testing.T, a answer) {
			if !a.JSONok || a.Env.Error == nil || a.Env.Error.Code != 124 || a.Env.Status != nil || a.Env.Data != nil {
				t.Errorf("want a Zoom error object, got %s", a.Body)
			}
		}},
		{Fault{Kind: FaultRateLimit}, 429, func(t *testing.T, a answer) {
			if a.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", a.Header.Get("Retry-After"))
			}
		}},
		{Fault{Kind: FaultGarbage}, 200, notJSON},
		{Fault{Kind: FaultHTML}, 502, func(t *testing.T, a answer) {
			if !strings.HasPrefix(a.Header.Get("Content-Type"), "text/html") || !bytes.Contains(a.Body, []byte("<html")) {
				t.Errorf("want an HTML page, got %s: %s", a.Header.Get("Content-Type"), a.Body)
			}
		}},
		{Fault{Kind: FaultTruncated}, 200, func(t *testing.T, a answer) {
			notJSON(t, a)
			if !bytes.HasPrefix(normal.Body, a.Body) || !bytes.Contains(a.Body, []byte(`"data":[`+"\n{")) || len(a.Body) >= len(normal.Body) {
				t.Errorf("want a prefix of the normal answer cut inside data, got %d of %d bytes", len(a.Body), len(normal.Body))
			}
		}},
		{Fault{Kind: FaultEmpty}, 200, func(t *testing.T, a answer) {
			if len(a.Body) != 0 {
				t.Errorf("body %q", a.Body)
			}
		}},
		{Fault{Kind: FaultNoData}, 200, func(t *testing.T, a answer) {
			if !a.JSONok || a.Env.Status == nil || *a.Env.Status != 200 || a.Env.Data != nil {
				t.Errorf("want a valid envelope without data, got %s", a.Body)
			}
		}},
		{Fault{Kind: FaultSlow, Delay: 20 * time.Millisecond}, 200, func(t *testing.T, a answer) {
			if !bytes.Equal(a.Body, normal.Body) {
				t.Error("a slow answer differs from the normal one")
			}
		}},
	} {
		t.Run(string(c.fault.Kind), func(t *testing.T) {
			c.fault.Count = 1
			s.SetFault(c.fault)
			a := post(t, api, v)
			if a.Code != c.code {
				t.Errorf("HTTP %d, want %d: %.200s", a.Code, c.code, a.Body)
			}
			c.check(t, a)
			if again := post(t, api, v); !bytes.Equal(again.Body, normal.Body) {
				t.Errorf("fault with Count 1 still active: HTTP %d %.200s", again.Code, again.Body)
			}
		})
	}
}

func TestFaultHTMLAlternates(t *testing.T) {
	s, api := serve(t, Options{NoGenerated: true})
	s.SetFault(Fault{Kind: FaultHTML, Count: 2})
	a, b := post(t, api, params(today, today)), post(t, api, params(today, today))
	if a.Code != http.StatusBadGateway || b.Code != http.StatusOK || !bytes.Contains(b.Body, []byte("<html")) || json.Valid(b.Body) {
		t.Errorf("want 502 then 200 with HTML, got %d then %d: %s", a.Code, b.Code, b.Body)
	}
}

func TestFaultCount(t *testing.T) {
	s, api := serve(t, Options{Seed: 1, Now: newClock(t0).Now})
	page := func(n int) int {
		return post(t, api, params(weekAgo, today, "page_number", strconv.Itoa(n))).Code
	}
	s.SetFault(Fault{Kind: FaultHTTP500, Count: 2})
	if got := []int{page(1), page(2), page(3), page(2), page(2), page(1)}; !slices.Equal(got, []int{500, 500, 200, 200, 200, 200}) {
		t.Errorf("twice: codes %v", got)
	}
	s.SetFault(Fault{Kind: FaultHTTP500})
	if got := []int{page(1), page(2), page(1)}; !slices.Equal(got, []int{500, 500, 500}) {
		t.Errorf("until cleared: codes %v", got)
	}
	s.SetFault(Fault{Kind: FaultNone})
	if page(1) != 200 {
		t.Error("cleared fault still active")
	}
	if s.Requests() != 10 {
		t.Errorf("Requests() = %d, want 10", s.Requests())
	}
}

// TestSlow: a client that gives up in time gets no answer, and the
// simulator lets go of the request.
func TestSlow(t *testing.T) {
	s, api := serve(t, Options{NoGenerated: true})
	s.SetFault(Fault{Kind: FaultSlow})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api, strings.NewReader(params(today, today).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered HTTP %d despite the wait", resp.StatusCode)
	}
}

func TestControlEndpoints(t *testing.T) {
	clock := newClock(t0)
	s, api := serve(t, Options{Seed: 3, Now: clock.Now})
	base := strings.TrimSuffix(api, APIPath)
	control := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/-/fault?kind=http_500&count=2&delay=2s", 200},
		{"POST", "/-/fault?kind=bogus", 400},
		{"POST", "/-/fault", 400},
		{"POST", "/-/fault?kind=http_500&count=-1", 400},
		{"POST", "/-/fault?kind=slow&delay=soon", 400},
		{"POST", "/-/fault?kind=slow&count=x", 400},
		{"GET", "/-/fault", 405},
		{"GET", "/-/requests", 404},
		{"GET", "/nowhere", 404},
		{"GET", "/", 200},
	} {
		if code, body := control(c.method, c.path); code != c.code {
			t.Errorf("%s %s: HTTP %d, want %d: %s", c.method, c.path, code, c.code, body)
		}
	}
	// The first, valid, POST set a fault for two requests (bad ones left it).
	codes := []int{post(t, api, params(today, today)).Code, post(t, api, params(today, today)).Code, post(t, api, params(today, today)).Code}
	if !slices.Equal(codes, []int{500, 500, 200}) {
		t.Errorf("after POST /-/fault count=2: %v", codes)
	}
	if code, _ := control("POST", "/-/fault?kind=garbage"); code != 200 {
		t.Fatal("setting garbage")
	}
	if code, _ := control("POST", "/-/fault?kind=none"); code != 200 || post(t, api, params(today, today)).Code != 200 {
		t.Error("kind=none did not clear")
	}
	if s.Requests() != 4 {
		t.Errorf("Requests() %d, want 4", s.Requests())
	}
}

func TestStartClose(t *testing.T) {
	s := New(Options{Seed: 1, Now: newClock(t0).Now})
	if s.Close() != nil {
		t.Fatal("Close of an unstarted simulator failed")
	}
	api, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(api, "http://127.0.0.1:") || !strings.HasSuffix(api, APIPath) || !strings.Contains(api, s.Addr()) {
		t.Errorf("Start returned %q, Addr %q", api, s.Addr())
	}
	ok(t, post(t, api, params(today, today)))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Post(api, "application/x-www-form-urlencoded", strings.NewReader(params(today, today).Encode())); err == nil {
		resp.Body.Close()
		t.Error("answered after Close")
	}
}
