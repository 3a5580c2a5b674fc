// Package slapdtest runs a real OpenLDAP server (Debian's slapd) for tests:
// on 127.0.0.1, with a generated config, test CA and data in a temporary
// folder, never the system's service. The tests of package directory and
// the end-to-end tests use it.
package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/umeeting/umeeting_exporter/internal/testproc"
)

// Fixed names of the test directory.
const (
	BaseDN      = "dc=example,dc=com"
	PeopleDN    = "ou=people," + BaseDN
	AdminDN     = "cn=admin," + BaseDN
	ServiceDN   = "cn=exporter,ou=services," + BaseDN
	adminSecret = "admin-secret-7c1d"
)

// Person is one entry of ou=people (inetOrgPerson): mail, ou (department),
// departmentNumber (cost centre), l (site), employeeType (licence).
type Person struct {
	UID, Mail, Department, CostCenter, Site, Licence string
}

// Options shape the server.
type Options struct {
	People []Person
	// ServicePassword is the password of ServiceDN, the account the
	// exporter binds as; the size limit applies to it.
	ServicePassword string
	// SizeLimit is the most entries one search (or one page) returns to
	// ServiceDN; default 100. Paged searches may read more in total.
	SizeLimit int
}

// Server is a running slapd.
type Server struct {
	URL      string // ldap://127.0.0.1:PORT (StartTLS available)
	LDAPSURL string // ldaps://127.0.0.1:PORT
	CAFile   string // PEM of the test CA that signed the server's certificate
	Dir      string

	cmd  *exec.Cmd
	done <-chan struct{}
	logs *testproc.Buffer
}

// Start runs slapd with opts until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	slapd, err := exec.LookPath("slapd")
	if err != nil { // Debian's, when /usr/sbin is not in PATH
		slapd, err = exec.LookPath("/usr/sbin/slapd")
	}
	if err != nil {
		t.Fatalf("slapd not found (%v): install Debian's slapd package (scripts/test-deps.sh does)", err)
	}
	if opts.SizeLimit == 0 {
		opts.SizeLimit = 100
	}
	dir := t.TempDir()
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "ca.pem"), logs: &testproc.Buffer{Max: 1 << 20}}
	writeCerts(t, dir)
	conf := filepath.Join(dir, "slapd.conf")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server.key
database mdb
maxsize 268435456
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[5]s
limits dn.exact="%[6]s" size.soft=%[7]d size.hard=%[7]d size.pr=%[7]d size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="%[6]s" read by * none
`, dir, BaseDN, AdminDN, adminSecret, data, ServiceDN, opts.SizeLimit)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ldif := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(ldif, []byte(buildLDIF(opts)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(filepath.Dir(slapd), "slapadd"), "-q", "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	addr, addrs := testproc.FreeAddr(t), testproc.FreeAddr(t)
	s.URL, s.LDAPSURL = "ldap://"+addr, "ldaps://"+addrs
	// -d 0: stay in the foreground, so the test owns the process.
	s.cmd = exec.Command(slapd, "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	s.done = testproc.Start(t, s.cmd, s.logs)
	testproc.StopAtEnd(t, "slapd", s.logs, s.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.done:
			t.Fatalf("slapd exited: %v\n%s", s.cmd.ProcessState, s.logs.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd not listening on %s after 15s:\n%s", addr, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends slapd and waits for it; the data stays until the test ends.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// Modify sets attributes (name → value) of a person, as the administrator.
func (s *Server) Modify(t testing.TB, uid string, attrs map[string]string) {
	t.Helper()
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(AdminDN, adminSecret); err != nil {
		t.Fatal(err)
	}
	req := ldap.NewModifyRequest("uid="+uid+","+PeopleDN, nil)
	for k, v := range attrs {
		req.Replace(k, []string{v})
	}
	if err := c.Modify(req); err != nil {
		t.Fatalf("modifying %s: %v", uid, err)
	}
}

func buildLDIF(opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n", BaseDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n", PeopleDN)
	fmt.Fprintf(&b, "dn: ou=services,%s\nobjectClass: organizationalUnit\nou: services\n\n", BaseDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: exporter\nsn: exporter\nuserPassword: %s\n\n",
		ServiceDN, opts.ServicePassword)
	for _, p := range opts.People {
		fmt.Fprintf(&b, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n", p.UID, PeopleDN, p.UID, p.UID, p.UID)
		for _, a := range []struct{ name, v string }{
			{"mail", p.Mail}, {"ou", p.Department}, {"departmentNumber", p.CostCenter}, {"l", p.Site}, {"employeeType", p.Licence},
		} {
			if a.v != "" {
				fmt.Fprintf(&b, "%s: %s\n", a.name, a.v)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeCerts writes a test CA and a server certificate for 127.0.0.1 and
// localhost signed by it.
func writeCerts(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "umeeting test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
