package directory

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/go-ldap/ldap/v3"
	promconfig "github.com/prometheus/common/config"

	"github.com/umeeting/umeeting_exporter/config"
)

// fetchLDAP reads a directory from an LDAP (or Active Directory) server:
// it connects (ldaps://, or ldap:// upgraded with StartTLS), binds, and
// reads every entry of base_dn matching filter, page by page, so that
// directories larger than the server's size limit are read whole. The
// bind password never appears in an error.
func fetchLDAP(ctx context.Context, c *config.LDAP, extra []string) (*Directory, error) {
	timeout := c.Timeout.D()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	tlsCfg, err := promconfig.NewTLSConfig(&c.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("tls_config: %w", err)
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = u.Hostname()
	}
	deadline, _ := ctx.Deadline()
	conn, err := ldap.DialURL(c.URL,
		ldap.DialWithDialer(&net.Dialer{Deadline: deadline}),
		ldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", config.RedactValue(c.URL), err)
	}
	defer conn.Close()
	conn.SetTimeout(timeout)
	// A server that stops answering mid-search is cut off at the deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	wrap := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w after %s (timeout)", what, ctx.Err(), timeout)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if c.StartTLS {
		if err := conn.StartTLS(tlsCfg); err != nil {
			return nil, wrap("StartTLS with "+config.RedactValue(c.URL), err)
		}
	}
	if c.BindDN != "" {
		if err := conn.Bind(c.BindDN, c.Password); err != nil {
			return nil, wrap(fmt.Sprintf("binding as %q", c.BindDN), err)
		}
	}

	a := c.Attributes
	var attrs []string
	for _, name := range append([]string{a.Email, a.Department, a.CostCenter, a.Site, a.Licence, a.Account}, extra...) {
		if name != "" { // an empty name leaves its field empty
			attrs = append(attrs, name)
		}
	}
	paging := ldap.NewControlPaging(uint32(c.PageSize))
	req := ldap.NewSearchRequest(c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, int(timeout/time.Second), false, c.Filter, attrs, []ldap.Control{paging})
	get := (*ldap.Entry).GetEqualFoldAttributeValue // "" for an attribute not read
	d := newDirectory(extra, 1024)
	vals := make([]string, len(extra))
	for page := 1; ; page++ {
		res, err := conn.Search(req)
		if err != nil {
			return nil, wrap(fmt.Sprintf("searching %q with filter %s (page %d)", c.BaseDN, c.Filter, page), err)
		}
		for _, e := range res.Entries {
			entry := Entry{
				Email: get(e, a.Email), Department: get(e, a.Department), CostCenter: get(e, a.CostCenter),
				Site: get(e, a.Site), Licence: get(e, a.Licence), Account: get(e, a.Account),
			}
			if len(extra) > 0 {
				for i, x := range extra {
					vals[i] = get(e, x)
				}
				entry.Extra = vals
			}
			d.add(entry)
		}
		ctrl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			break // the last page, or a server that does not page
		}
		paging.SetCookie(ctrl.Cookie)
	}
	return d, nil
}
