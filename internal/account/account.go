// Package account builds what an account's section of the config stands
// for, for the live exporter and the history alike: its API client and the
// label options of its series.
package account

import (
	"fmt"
	"time"

	"github.com/go-kit/log"
	promconfig "github.com/prometheus/common/config"

	"github.com/umeeting/umeeting_exporter/budget"
	"github.com/umeeting/umeeting_exporter/collector"
	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/umeeting"
)

// MetricsOptions are the collector's label options of the config's metrics
// section.
func MetricsOptions(m config.Metrics) collector.Options {
	o := collector.Options{PerHost: m.PerHost, MaxHosts: m.MaxHosts, MaxUserTypes: m.MaxUserTypes}
	if m.HostInclude != nil {
		o.Include = m.HostInclude.Regexp
	}
	if m.HostExclude != nil {
		o.Exclude = m.HostExclude.Regexp
	}
	return o
}

// NewClient builds the API client of an account as configured, spending
// b (nil: no budget); onRequest (may be nil) sees the result of every
// request.
func NewClient(a config.Account, b *budget.Budget, logger log.Logger, onRequest func(result string)) (*umeeting.Client, error) {
	httpClient, err := promconfig.NewClientFromConfig(a.HTTPClientConfig, "umeeting_exporter")
	if err != nil {
		return nil, fmt.Errorf("http_client_config: %w", err)
	}
	var spend umeeting.Budget // nil, not a nil *budget.Budget
	if b != nil {
		spend = b
	}
	return umeeting.New(umeeting.Config{
		Account:      a.Name,
		URL:          a.APIURL,
		APIKey:       a.APIKey,
		APISecret:    a.Secret,
		Method:       a.Method,
		Location:     a.Location,
		PageSize:     a.PageSize,
		Timeout:      a.Timeout.D(),
		MaxRetries:   clientRetries(a.MaxRetries),
		MaxBodyBytes: int64(a.MaxAnswerSize.Base2Bytes),
		MaxPages:     a.MaxPages,
		MaxLength:    a.MaxMeetingLength.D(),
		HTTPClient:   httpClient,
		Budget:       spend,
		Logger:       logger,
		OnRequest:    onRequest,
		RetryBackoff: time.Second,
	})
}

// clientRetries maps max_retries to the client's MaxRetries, where 0
// means the default: max_retries: 0 means no retries.
func clientRetries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
