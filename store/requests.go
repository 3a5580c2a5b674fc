package store

import "time"

// RequestTimes returns the times of the API requests saved with the state
// (those of the daily budget's window when they were set), oldest first.
func (s *Store) RequestTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := make([]time.Time, len(s.st.Requests))
	for i, t := range s.st.Requests {
		ts[i] = time.Unix(0, t)
	}
	return ts
}

// SetRequestTimes replaces the request times saved with the state; ts must
// be oldest first. The next Save writes them.
func (s *Store) SetRequestTimes(ts []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Requests = s.st.Requests[:0]
	for _, t := range ts {
		s.st.Requests = append(s.st.Requests, t.UnixNano())
	}
}
