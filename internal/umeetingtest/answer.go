// Package umeetingtest writes realistic hisMeeting answers for tests and
// benchmarks.
package umeetingtest

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"io"
	"runtime"
	"strconv"
	"time"
)

// Hosts is how many distinct hosts WriteAnswer uses.
const Hosts = 50

// UserTypes are the licence types WriteAnswer uses.
var UserTypes = []string{"Corp", "Pro", "Basic", "Enterprise"}

// Span is the period WriteAnswer spreads the meetings' ends over: every
// end_time lies in [start, start+Span] when start is a whole second.
const Span = 24 * time.Hour

// WriteAnswer writes a complete answer, {"status": 200, "message": "OK",
// "data": [...]}, with n distinct valid records in the vendor's layout (about
// 400 bytes each: trailing spaces in host names, mixed-case e-mails,
// "N分钟" or "1小时N分钟" durations). Record i ends at start + (i+1)·Span/n,
// seconds truncated, and lasts 1 to 120 minutes; the output is the same for
// the same arguments.
func WriteAnswer(w io.Writer, n int, start time.Time) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("{\n    \"status\": 200,\n    \"message\": \"OK\",\n    \"data\": [")
	rec := make([]byte, 0, 512)
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		rec = appendRecord(rec[:0], i, n, start)
		if _, err := bw.Write(rec); err != nil {
			return err
		}
	}
	bw.WriteString("\n    ]\n}\n")
	return bw.Flush()
}

func appendRecord(b []byte, i, n int, start time.Time) []byte {
	r := mix(uint64(i))
	host := int(r % Hosts)
	end := start.Add(time.Duration(float64(Span) * float64(i+1) / float64(n))).UTC().Truncate(time.Second)
	length := time.Duration(60+(r>>8)%7140) * time.Second // 1 min to 2 h
	begin := end.Add(-length)

	var id [10]byte // a bijection of i, so uuids never repeat
	binary.BigEndian.PutUint64(id[:8], uint64(i)*0x9e3779b97f4a7c15)
	id[8], id[9] = byte(r>>16), byte(r>>24)

	b = append(b, "\n        {\"uuid\": \""...)
	b = base64.StdEncoding.AppendEncode(b, id[:])
	b = append(b, "\", \"id\": "...)
	b = strconv.AppendUint(b, 1000000000+(r>>32)%9000000000, 10)
	b = append(b, ", \"host\": \"test"...)
	b = appendTwoDigits(b, host)
	b = append(b, " \", \"email\": \""...)
	if host%3 == 0 {
		b = append(b, "Test"...)
	} else {
		b = append(b, "test"...)
	}
	b = appendTwoDigits(b, host)
	b = append(b, "@rfchina.com\", \"user_type\": \""...)
	b = append(b, UserTypes[host%len(UserTypes)]...)
	b = append(b, "\", \"start_time\": \""...)
	b = begin.AppendFormat(b, time.RFC3339)
	b = append(b, "\", \"end_time\": \""...)
	b = end.AppendFormat(b, time.RFC3339)
	b = append(b, "\", \"duration\": \""...)
	minutes := int((length + time.Minute - 1) / time.Minute) // rounded up, as the vendor does
	if minutes > 60 {
		b = strconv.AppendInt(b, int64(minutes/60), 10)
		b = append(b, "小时"...)
		minutes %= 60
	}
	b = strconv.AppendInt(b, int64(minutes), 10)
	b = append(b, "分钟\", \"participants\": "...)
	b = strconv.AppendUint(b, 1+(r>>40)%49, 10)
	for k, name := range []string{"has_pstn", "has_voip", "has_3rd_party_audio", "has_video", "has_screen_share"} {
		b = append(b, ", \""...)
		b = append(b, name...)
		b = append(b, "\": "...)
		b = strconv.AppendBool(b, (r>>(48+k))&1 == 1)
	}
	b = append(b, ", \"recording\": "...)
	b = strconv.AppendUint(b, (r>>56)&1, 10)
	return append(b, '}')
}

func appendTwoDigits(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

// mix is splitmix64: deterministic pseudo-random bits from an index.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// LiveHeap collects garbage and returns the bytes of live heap objects, for
// benchmarks that show what a decode or an ingest retains.
func LiveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Record is a record of WriteAnswer's answers as plain encoding/json reads
// it into a struct: the floor the benchmarks compare the decoder with.
type Record struct {
	UUID             string    `json:"uuid"`
	ID               int64     `json:"id"`
	Host             string    `json:"host"`
	Email            string    `json:"email"`
	UserType         string    `json:"user_type"`
	StartTime        time.Time `json:"start_time"`
	EndTime          time.Time `json:"end_time"`
	Duration         string    `json:"duration"`
	Participants     int       `json:"participants"`
	HasPSTN          bool      `json:"has_pstn"`
	HasVoIP          bool      `json:"has_voip"`
	Has3rdPartyAudio bool      `json:"has_3rd_party_audio"`
	HasVideo         bool      `json:"has_video"`
	HasScreenShare   bool      `json:"has_screen_share"`
	Recording        int       `json:"recording"`
}

// Answer is a whole answer as plain encoding/json reads it.
type Answer struct {
	Status  int      `json:"status"`
	Message string   `json:"message"`
	Data    []Record `json:"data"`
}
