package directory

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/umeeting/umeeting_exporter/config"
	"github.com/umeeting/umeeting_exporter/internal/slapdtest"
)

const servicePassword = "Sv3c-pa55-LDAP-91x"

func people(n int) []slapdtest.Person {
	out := make([]slapdtest.Person, n)
	for i := range out {
		out[i] = slapdtest.Person{
			UID: fmt.Sprintf("p%04d", i), Mail: fmt.Sprintf("Person.%04d@Example.com", i),
			Department: fmt.Sprintf("Dept %d", i%7), CostCenter: fmt.Sprintf("CC-%d", 100+i%3),
			Site: "Beijing", Licence: []string{"Pro", "Corp", ""}[i%3],
		}
	}
	return out
}

// openLDAPConfig is an ldap: section for the test server, mapped to
// OpenLDAP's inetOrgPerson attributes.
func openLDAPConfig(s *slapdtest.Server, url string) *config.LDAP {
	c := config.DefaultLDAP
	c.URL = url
	c.BindDN = slapdtest.ServiceDN
	c.Password = servicePassword
	c.BaseDN = slapdtest.PeopleDN
	c.Filter = "(&(objectClass=inetOrgPerson)(mail=*))"
	c.PageSize = 40
	c.Timeout = config.NewDuration(10 * time.Second)
	c.Attributes = config.LDAPAttributes{Email: "mail", Department: "ou", CostCenter: "departmentNumber", Site: "l", Licence: "employeeType"}
	c.TLSConfig.CAFile = s.CAFile
	return &c
}

func TestLDAPPagedStartTLSAndLDAPS(t *testing.T) {
	const n = 250 // more than the server's size limit of 100: only paging reads them all
	s := slapdtest.Start(t, slapdtest.Options{People: people(n), ServicePassword: servicePassword, SizeLimit: 100})

	t.Run("starttls", func(t *testing.T) {
		c := openLDAPConfig(s, s.URL)
		c.StartTLS = true
		d, err := fetchLDAP(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Len() != n { // more than one search returns (see "unpaged search hits the size limit")
			t.Fatalf("read %d people, want %d", d.Len(), n)
		}
		e, ok := d.Lookup("person.0007@example.com")
		if !ok || e.Department != "Dept 0" || e.CostCenter != "CC-101" || e.Site != "Beijing" || e.Licence != "Corp" {
			t.Errorf("person 7 = %+v, %v", e, ok)
		}
	})
	t.Run("ldaps", func(t *testing.T) {
		d, err := fetchLDAP(context.Background(), openLDAPConfig(s, s.LDAPSURL), nil)
		if err != nil || d.Len() != n {
			t.Fatalf("ldaps: %d people, %v", d.Len(), err)
		}
	})
	t.Run("unpaged search hits the size limit", func(t *testing.T) {
		// Proves the server really limits what one search returns, so the
		// reads above went over several pages.
		conn, err := ldap.DialURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Bind(slapdtest.ServiceDN, servicePassword); err != nil {
			t.Fatal(err)
		}
		_, err = conn.Search(ldap.NewSearchRequest(slapdtest.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			0, 0, false, "(mail=*)", []string{"mail"}, nil))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			t.Fatalf("want a size limit error, got %v", err)
		}
		c := openLDAPConfig(s, s.URL)
		c.StartTLS, c.PageSize = true, 1000
		if _, err := fetchLDAP(context.Background(), c, nil); err == nil {
			t.Fatal("a page size above the server's limit was accepted")
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c := openLDAPConfig(s, s.URL)
		c.StartTLS = true
		c.Password = "wrong-Pa55word-xyz"
		_, err := fetchLDAP(context.Background(), c, nil)
		if err == nil || !strings.Contains(err.Error(), "Invalid Credentials") {
			t.Fatalf("want invalid credentials, got %v", err)
		}
		if strings.Contains(err.Error(), c.Password) {
			t.Fatalf("error shows the password: %v", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		c := openLDAPConfig(s, s.URL)
		c.StartTLS = true
		c.TLSConfig.CAFile = ""
		if _, err := fetchLDAP(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("want a certificate error, got %v", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		c := openLDAPConfig(s, "ldap://127.0.0.1:1")
		c.StartTLS = true
		if _, err := fetchLDAP(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "connecting to ldap://127.0.0.1:1") {
			t.Fatalf("want a connection error, got %v", err)
		}
	})
}
