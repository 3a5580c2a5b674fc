// Command floor is the poll floor of scripts/pollcpu: what any client of
// the API pays for a poll. Every poll interval it sends the requests a
// poll of the configured account sends (the same HTTP client, built by
// prometheus/common from the account's http_client_config, and the same
// form) and decodes each answer with encoding/json into structs, doing
// nothing more with them. It takes the exporter's flags, so that
// scripts/pollcpu runs it as it runs the exporter, and -pages, the
// requests of a poll.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/url"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/umeetingtest"
)

func main() {
	file := flag.String("config.file", "config.yml", "the exporter's configuration file")
	pages := flag.Int("pages", 100, "requests of a poll")
	flag.String("storage.path", "", "ignored")
	flag.String("web.listen-address", "", "ignored")
	flag.String("log.level", "", "ignored")
	flag.Parse()
	cfg, err := config.Load(*file)
	if err != nil {
		log.Fatal(err)
	}
	a := cfg.Accounts[0]
	hc, err := promconfig.NewClientFromConfig(a.HTTPClientConfig, "umeeting_exporter")
	if err != nil {
		log.Fatal(err)
	}
	for {
		start := time.Now()
		// The dates a poll asks for, padded: the same records.
		form := url.Values{"api_key": {a.APIKey}, "api_secret": {a.Secret}, "page_size": {strconv.Itoa(a.PageSize)},
			"from": {start.Add(-cfg.Lookback.D() - a.MaxMeetingLength.D() - 24*time.Hour).Format("2006-01-02")},
			"to":   {start.Add(24 * time.Hour).Format("2006-01-02")}}
		for page := 1; page <= *pages; page++ {
			form.Set("page_number", strconv.Itoa(page))
			resp, err := hc.Post(a.APIURL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
			if err != nil {
				log.Fatal(err)
			}
			var answer umeetingtest.Answer
			if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
				log.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(time.Until(start.Add(cfg.PollInterval.D())))
	}
}
