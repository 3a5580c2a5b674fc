package directory

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseCSV(t *testing.T) {
	for _, tc := range []struct {
		name, text string
	}{
		{"comma", "email,department,cost_center,site,licence\n Wang.Wei@Example.com ,Sales,CC-1,Beijing,Pro\nli.na@example.com,Finance,CC-2,Shanghai,\n"},
		{"semicolon", "email;department;cost_center;site;licence\nwang.wei@example.com;Sales;CC-1;Beijing;Pro\nli.na@example.com;Finance;CC-2;Shanghai;\n"},
		{"bom", "\xEF\xBB\xBFemail,department,cost_center,site,licence\r\nwang.wei@example.com,Sales,CC-1,Beijing,Pro\r\nli.na@example.com,Finance,CC-2,Shanghai,\r\n"},
		{"bom semicolon quoted", "\xEF\xBB\xBF\"Email\";\"Department\";\"Cost_Center\";\"Site\";\"Licence\"\n\"wang.wei@example.com\";\"Sales\";\"CC-1\";\"Beijing\";\"Pro\"\n\"li.na@example.com\";\"Finance\";\"CC-2\";\"Shanghai\";\"\"\n"},
		{"other order and columns", "name,licence,site,email,cost_center,department\nWang Wei,Pro,Beijing,wang.wei@example.com,CC-1,Sales\nLi Na,,Shanghai,li.na@example.com,CC-2,Finance\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseCSV(strings.NewReader(tc.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Len() != 2 {
				t.Fatalf("%d entries", d.Len())
			}
			e, ok := d.Lookup("wang.wei@example.com")
			if !ok || e.Department != "Sales" || e.CostCenter != "CC-1" || e.Site != "Beijing" || e.Licence != "Pro" {
				t.Errorf("wang.wei = %+v %v", e, ok)
			}
			if e, _ := d.Lookup("li.na@example.com"); e == nil || e.Licence != "" || e.Department != "Finance" {
				t.Errorf("li.na = %+v", e)
			}
		})
	}
}

func TestParseCSVMissingColumn(t *testing.T) {
	_, err := ParseCSV(strings.NewReader("email,department,site,licence\na@example.com,Sales,Beijing,Pro\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `missing column(s) ["cost_center"]`) {
		t.Fatalf("want the missing column named, got %v", err)
	}
	_, err = ParseCSV(strings.NewReader("email,department,cost_center,site,licence\na@example.com,Sales,CC,Beijing,Pro\n"), []string{"manager"})
	if err == nil || !strings.Contains(err.Error(), `"manager"`) {
		t.Fatalf("want the missing extra column named, got %v", err)
	}
	_, err = ParseCSV(strings.NewReader(""), nil)
	if err == nil || !strings.Contains(err.Error(), "empty file") {
		t.Fatalf("empty file: %v", err)
	}
	_, err = ParseCSV(strings.NewReader("email,department,cost_center,site,licence\na@example.com,Sales,CC,Beijing\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("short row: want its line named, got %v", err)
	}
}

func TestParseCSVDuplicatesFirstWins(t *testing.T) {
	text := "email,department,cost_center,site,licence,account,manager\n" +
		"a@example.com,Sales,CC-1,Beijing,Pro,acme,Boss A\n" +
		"A@EXAMPLE.COM ,Finance,CC-2,Shanghai,Corp,acme,Boss B\n" +
		",Nowhere,,,,,\n" +
		"b@example.com,Finance,CC-2,Shanghai,Corp,,Boss B\n" +
		"a@example.com,Legal,CC-3,Shenzhen,Basic,,Boss C\n"
	d, err := ParseCSV(strings.NewReader(text), []string{"manager"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || d.Duplicates != 2 || d.NoEmail != 1 {
		t.Fatalf("len %d duplicates %d no e-mail %d, want 2 2 1", d.Len(), d.Duplicates, d.NoEmail)
	}
	e, _ := d.Lookup("a@example.com")
	if e.Department != "Sales" || e.Account != "acme" || len(e.Extra) != 1 || e.Extra[0] != "Boss A" {
		t.Errorf("first entry did not win: %+v", e)
	}
	if e, _ := d.Lookup("b@example.com"); e.Extra[0] != "Boss B" || e.Account != "" {
		t.Errorf("b = %+v", e)
	}
}

// writeCSV writes a directory of n people and returns its path.
func writeCSV(t testing.TB, n int) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("email,department,cost_center,site,licence\n")
	for i := range n {
		fmt.Fprintf(&b, "person%06d@example.com,Department %d,CC-%d,Site %d,%s\n", i, i%120, i%40, i%9, []string{"Pro", "Corp", "Basic", ""}[i%4])
	}
	path := filepath.Join(t.TempDir(), "directory.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadFile100000Rows(t *testing.T) {
	path := writeCSV(t, 100_000)
	d, err := ReadFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 100_000 || d.Duplicates != 0 {
		t.Fatalf("%d entries, %d duplicates", d.Len(), d.Duplicates)
	}
	e, ok := d.Lookup("person099999@example.com")
	if !ok || e.Department != "Department 39" || e.Licence != "" {
		t.Errorf("last row = %+v %v", e, ok)
	}
	// Repeated values share memory.
	a, _ := d.Lookup("person000000@example.com")
	b, _ := d.Lookup("person000120@example.com")
	if a.Department != b.Department || a.Department == "" {
		t.Fatalf("departments %q %q", a.Department, b.Department)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.csv"), nil); err == nil {
		t.Error("a missing file was read")
	}
}

func TestMerge(t *testing.T) {
	file, _ := ParseCSV(strings.NewReader("email,department,cost_center,site,licence\na@example.com,Fixed,CC,S,Pro\n"), nil)
	ldap, _ := ParseCSV(strings.NewReader("email,department,cost_center,site,licence\na@example.com,Wrong,CC,S,Pro\nb@example.com,Sales,CC,S,\n"), nil)
	d := merge(file, nil, ldap)
	if d.Len() != 2 {
		t.Fatalf("%d entries", d.Len())
	}
	if e, _ := d.Lookup("a@example.com"); e.Department != "Fixed" {
		t.Errorf("the file did not win: %+v", e)
	}
	if merge(nil, nil).Len() != 0 || merge(file) != file {
		t.Error("merging nothing or one")
	}
}

// FuzzParseCSV: any input gives a directory or an error, never a panic,
// and every kept entry has a normalised, unique e-mail.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("email,department,cost_center,site,licence\na@x.com,S,C,B,Pro\n"))
	f.Add([]byte("\xEF\xBB\xBFemail;department;cost_center;site;licence;account\nA@X.COM;S;C;B;;acme\na@x.com;T;C;B;Pro;\n"))
	f.Add([]byte("licence,site,email,cost_center,department,x\n\"a,b\",\"q\"\"\",a@x.com,,,\n"))
	f.Add([]byte("email,department\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseCSV(bytes.NewReader(data), nil)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range d.Entries() {
			if e.Email == "" || e.Email != strings.ToLower(strings.TrimSpace(e.Email)) || seen[e.Email] {
				t.Fatalf("bad entry %+v", e)
			}
			for _, v := range []string{e.Email, e.Department, e.CostCenter, e.Site, e.Licence, e.Account} {
				if !utf8.ValidString(v) {
					t.Fatalf("not UTF-8: %+v", e) // would fail every scrape
				}
			}
			seen[e.Email] = true
			if got, ok := d.Lookup(e.Email); !ok || got.Email != e.Email {
				t.Fatalf("lookup of %q", e.Email)
			}
		}
	})
}

// TestNotUTF8 : a file saved in a legacy code page (é as 0xE9) would make
// label values that client_golang refuses, failing every scrape: the read
// fails with the line and column named, and the last good copy stays.
func TestNotUTF8(t *testing.T) {
	_, err := ParseCSV(strings.NewReader("email,department,cost_center,site,licence\na@x.com,Op\xe9rations,CC,S,Pro\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `line 2: column "department" is not UTF-8`) {
		t.Fatalf("want the line and column named, got %v", err)
	}
	// Values that do not come from a file (LDAP) are repaired instead.
	d := newDirectory(nil, 1)
	d.add(Entry{Email: "b@x.com", Department: "Op\xe9rations", Site: "\xff"})
	e, _ := d.Lookup("b@x.com")
	if !utf8.ValidString(e.Department) || !utf8.ValidString(e.Site) || !strings.HasPrefix(e.Department, "Op") {
		t.Fatalf("entry = %+v", e)
	}
}

func TestOversizedFileFails(t *testing.T) {
	defer func(old int64) { maxCSVBytes = old }(maxCSVBytes)
	maxCSVBytes = 1 << 20
	r := io.MultiReader(strings.NewReader("email,department,cost_center,site,licence\n"),
		&repeatReader{line: []byte("a@x.com,D,C,S,Pro\n"), n: int(maxCSVBytes/18) + 10})
	_, err := ParseCSV(r, nil)
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("want a size error, got %v", err)
	}
}

// repeatReader yields line n times without holding it all in memory.
type repeatReader struct {
	line []byte
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.n > 0 {
		c := copy(p[k:], r.line[r.off:])
		k += c
		r.off += c
		if r.off == len(r.line) {
			r.off, r.n = 0, r.n-1
		}
	}
	return k, nil
}

// TestReadFileRewrittenInPlace: a file rewritten in place while it is read
// (a script writing it with a shell redirection) is either read whole or
// refused, never read half: each rewrite truncates the file, then writes
// it back a few hundred lines at a time. The guarantee holds for a writer
// that never pauses as long as settle: a half read is a failure unless the
// writer was stalled that long around it (a loaded machine descheduling
// it), which the writer measures itself.
func TestReadFileRewrittenInPlace(t *testing.T) {
	const n = 5000
	path := writeCSV(t, n)
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var writes, stalls atomic.Int64 // writes done; pauses of settle/2 or more seen
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		last := time.Now()
		step := func() {
			if now := time.Now(); now.Sub(last) >= settle/2 {
				stalls.Add(1)
			}
			last = time.Now()
			writes.Add(1)
		}
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				wrote <- err
				return
			}
			step()
			for rest := content; len(rest) > 0; {
				k := min(len(rest), 16<<10)
				k += bytes.IndexByte(rest[k-1:], '\n') // whole lines
				f.Write(rest[:k])
				step()
				rest = rest[k:]
				time.Sleep(time.Millisecond) // a writer that does other work between lines
			}
			f.Close()
		}
		wrote <- nil
	}()
	whole, refused, stalled := 0, 0, 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && whole+refused < 200; {
		stallsBefore := stalls.Load()
		d, err := ReadFile(path, nil)
		if err != nil {
			refused++
			continue
		}
		if d.Len() == n {
			whole++
			continue
		}
		// A half read: fail unless the writer, once it resumes, reports a
		// pause of settle/2 or more since the read began.
		for w := writes.Load(); writes.Load() == w && time.Now().Before(deadline.Add(10*time.Second)); {
			time.Sleep(10 * time.Millisecond)
		}
		if stalls.Load() == stallsBefore {
			t.Fatalf("read %d of %d people while the file was rewritten", d.Len(), n)
		}
		stalled++
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads whole, %d refused, %d half reads while the writer was stalled by the machine", whole, refused, stalled)
	if refused == 0 {
		t.Error("no read saw the file change")
	}
}

func TestReadFileRefusesHeaderOnlyAndOddFiles(t *testing.T) {
	dir := t.TempDir()
	header := filepath.Join(dir, "header.csv")
	os.WriteFile(header, []byte("email,department,cost_center,site,licence\n"), 0o600)
	if _, err := ReadFile(header, nil); err == nil || !strings.Contains(err.Error(), "no person") {
		t.Errorf("a header-only file: %v", err)
	}
	noEmail := filepath.Join(dir, "noemail.csv")
	os.WriteFile(noEmail, []byte("email,department,cost_center,site,licence\n,Sales,CC,S,Pro\n"), 0o600)
	if _, err := ReadFile(noEmail, nil); err == nil || !strings.Contains(err.Error(), "no person") {
		t.Errorf("a file without e-mails: %v", err)
	}
	zero := filepath.Join(dir, "zero.csv")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(zero, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a link to /dev/zero: %v", err)
	}
	sparse := filepath.Join(dir, "sparse.csv")
	f, _ := os.Create(sparse)
	f.Truncate(1 << 40)
	f.Close()
	if _, err := ReadFile(sparse, nil); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a sparse 1 TiB file: %v", err)
	}
}
