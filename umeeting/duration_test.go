package umeeting

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	m, h, s := time.Minute, time.Hour, time.Second
	good := []struct {
		in   string
		want time.Duration
	}{
		{"9分钟", 9 * m},
		{"1小时5分钟", h + 5*m},
		{"1小时", h},
		{"45秒", 45 * s},
		{"0分钟", 0},
		{"2小时3分钟10秒", 2*h + 3*m + 10*s},
		{"1小時5分鐘", h + 5*m},
		{"1天2小时", 26 * h},
		{"9 minutes", 9 * m},
		{"9 min", 9 * m},
		{"9 mins", 9 * m},
		{"1 minute", m},
		{"1 hour 5 minutes", h + 5*m},
		{"1 hour, 5 minutes", h + 5*m},
		{"2 hours 3 minutes 10 seconds", 2*h + 3*m + 10*s},
		{"45 seconds", 45 * s},
		{"45 sec", 45 * s},
		{"1h5m", h + 5*m},
		{"1H5M", h + 5*m},
		{"1h 5m 3s", h + 5*m + 3*s},
		{"9m", 9 * m},
		{"45s", 45 * s},
		{"9", 9 * m},
		{"2.5", 2*m + 30*s},
		{"1.5 hours", 90 * m},
		{" 9分钟 ", 9 * m},
		{"\t1 小时 5 分钟\n", h + 5*m},
		{"\u30009分钟\u3000", 9 * m},
		{"0", 0},
	}
	for _, tc := range good {
		got, ok := ParseDuration(tc.in)
		if !ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, true", tc.in, got, ok, tc.want)
		}
	}
	bad := []string{
		"", "   ", "-5分钟", "-5", "abc", "分钟", "九分钟", "5 parsecs", "5分钟x", "1h1h", "5m 3m",
		"5 5", "1h 5", "5 1h", "1e3", "+5", "5..5m", "5 分 钟", "1h-5m", "NaN", "Inf minutes",
		"99999999999999999999999999 hours",
	}
	for _, in := range bad {
		if got, ok := ParseDuration(in); ok {
			t.Errorf("ParseDuration(%q) = %v, true; want false", in, got)
		}
	}
}
