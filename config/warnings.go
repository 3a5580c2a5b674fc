package config

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

const day = 24 * time.Hour

// monthChunkDays is the fewest days one request of a poll moves forward:
// a period of at most a month, the next one starting on its last day.
const monthChunkDays = 30

// PaddedDays is how many calendar days one poll's requests cover at most
// with this reach: the dates it touches, and a day on each side
// (the API's zone and the inclusiveness of `to` are unknown).
func PaddedDays(lookback time.Duration) int {
	dates := int(lookback/day) + 1
	if lookback%day != 0 {
		dates++
	}
	return dates + 2
}

// RequestsPerPoll is the fewest requests one poll makes with this reach:
// one per month-long period of the padded window (more with paging).
func RequestsPerPoll(lookback time.Duration) int {
	return max(1, (PaddedDays(lookback)-1+monthChunkDays-1)/monthChunkDays)
}

// Warnings are settings that are valid but will not work as meant: polls
// that need more requests than the daily budget allows, and a minimum
// request interval longer than the poll interval. --config.check prints
// them and the exporter logs them at start and reload.
func (c *Config) Warnings() []string {
	var ws []string
	for i, a := range c.Accounts {
		field := fmt.Sprintf("accounts[%d] (%s)", i, a.Name)
		// A poll reaches back the lookback and the longest believable
		// meeting before it, for an API that lists meetings by start date.
		reach := c.Lookback.D() + a.MaxMeetingLength.D()
		perDay := int((day+c.PollInterval.D()-1)/c.PollInterval.D()) * RequestsPerPoll(reach)
		if a.DailyRequestBudget > 0 && perDay > a.DailyRequestBudget {
			ws = append(ws, fmt.Sprintf("%s: %s polls with a %s lookback need about %d requests a day "+
				"(%d a poll for its %d padded days, more with paging); the budget is %d: "+
				"polls will fail once it is spent (raise poll_interval or daily_request_budget)",
				field, c.PollInterval, c.Lookback, perDay, RequestsPerPoll(reach),
				PaddedDays(reach), a.DailyRequestBudget))
		}
		if mri := a.MinRequestInterval.D(); mri > c.PollInterval.D() {
			ws = append(ws, fmt.Sprintf("%s: min_request_interval %s is longer than poll_interval %s: "+
				"each poll waits for the previous poll's last request, polls run late, "+
				"and one fails when that wait would pass poll_timeout %s",
				field, a.MinRequestInterval, c.PollInterval, model.Duration(c.EffectivePollTimeout())))
		}
	}
	return ws
}
