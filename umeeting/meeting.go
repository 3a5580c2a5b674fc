// Package umeeting is a client for the UMeeting hisMeeting history API: it
// knows HTTP, the answer envelope, paging, the one-month cap and the quirks
// of the vendor's records, and hands validated meetings to a Sink.
package umeeting

import "time"

// Feature is one optional capability a meeting used, as a bit in a set.
type Feature uint8

// The features a record can report. Their order is the order of FeatureNames.
const (
	FeatureVideo Feature = 1 << iota
	FeatureScreenShare
	FeatureVoIP
	FeaturePSTN
	FeatureThirdPartyAudio
	FeatureRecording
)

// AllFeatures lists every feature, in the order of FeatureNames.
var AllFeatures = []Feature{FeatureVideo, FeatureScreenShare, FeatureVoIP, FeaturePSTN, FeatureThirdPartyAudio, FeatureRecording}

// FeatureNames are the values of the `feature` label, index i naming AllFeatures[i].
var FeatureNames = []string{"video", "screen_share", "voip", "pstn", "third_party_audio", "recording"}

// UnknownUserType stands for a record without a user_type.
const UnknownUserType = "unknown"

// Meeting is one finished meeting instance, validated and normalised.
type Meeting struct {
	UUID         string // unique per instance: the dedup key
	ID           int64  // meeting number; repeats across instances
	Host         string // display name, trimmed
	Email        string // trimmed and lower-cased
	UserType     string // licence type, trimmed; UnknownUserType when absent
	Start        time.Time
	End          time.Time
	Participants int
	Features     Feature
}

// Length is how long the meeting lasted.
func (m *Meeting) Length() time.Duration { return m.End.Sub(m.Start) }

// Reasons a record is rejected: the values of the `reason` label of
// umeeting_records_invalid_total.
const (
	ReasonMissingUUID         = "missing_uuid"          // no uuid, so it cannot be counted once
	ReasonBadEndTime          = "bad_end_time"          // end_time missing or unparsable
	ReasonEndBeforeStart      = "end_before_start"      // end_time earlier than start_time
	ReasonNoLength            = "no_length"             // start_time and duration both unusable
	ReasonBadParticipants     = "bad_participants"      // participants negative or not a number
	ReasonMalformed           = "malformed"             // not a JSON object, or a field of an impossible type
	ReasonTooLong             = "too_long"              // longer than max_meeting_length (e.g. a start in the year 1)
	ReasonTooManyParticipants = "too_many_participants" // more than MaxParticipants
)

// InvalidReasons lists every reason, so counters can start at zero.
var InvalidReasons = []string{ReasonMissingUUID, ReasonBadEndTime, ReasonEndBeforeStart, ReasonNoLength,
	ReasonBadParticipants, ReasonMalformed, ReasonTooLong, ReasonTooManyParticipants}

// Sink receives the records of an answer while it is decoded, so that no
// answer is ever held whole in memory. A page's records are provisional
// until CommitPage; after DiscardPage they must be forgotten, because the
// page turned out to be an error and will be fetched again or the fetch fails.
type Sink interface {
	Meeting(m *Meeting) // m is only valid during the call
	Invalid(reason string, raw []byte)
	CommitPage()
	DiscardPage()
}

// Results of one API request: the values of the `result` label of
// umeeting_api_requests_total.
const (
	ResultSuccess      = "success"
	ResultHTTPError    = "http_error"    // HTTP status other than 2xx (but 429)
	ResultRateLimited  = "rate_limited"  // HTTP 429 or a rate-limit envelope error
	ResultAPIError     = "api_error"     // envelope status != 200 or an error object
	ResultBadResponse  = "bad_response"  // empty, HTML, truncated or otherwise undecodable answer, or too large
	ResultTimeout      = "timeout"       // no complete answer in time
	ResultNetworkError = "network_error" // connection refused, reset, DNS, TLS
)

// RequestResults lists every result, so counters can start at zero.
var RequestResults = []string{ResultSuccess, ResultHTTPError, ResultRateLimited, ResultAPIError, ResultBadResponse, ResultTimeout, ResultNetworkError}
