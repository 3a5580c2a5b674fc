package simulator

import "strings"

// HostInfo is one licensed user of the generated company.
type HostInfo struct {
	Email    string // canonical, lower case
	Name     string // display name, trimmed
	UserType string // licence type
}

// Hosts lists the generated company's users, including those who rarely
// or never hold a meeting; the demo's directory is built from it.
func (s *Simulator) Hosts() []HostInfo {
	out := make([]HostInfo, len(s.hosts))
	for i, h := range s.hosts {
		out[i] = HostInfo{Email: h.email, Name: strings.TrimRight(h.name, " "), UserType: h.userType}
	}
	return out
}
