package directory

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// requiredColumns must be in the header of a directory CSV file.
var requiredColumns = []string{"email", "department", "cost_center", "site", "licence"}

// accountColumn is optional: the UMeeting account a licence belongs to.
const accountColumn = "account"

// maxCSVBytes bounds a directory file, so a wrong path (a log, a disk
// image) fails clearly instead of eating the memory; a variable for tests.
var maxCSVBytes int64 = 1 << 30

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// settle is how long after its last change a file must stay unchanged
// for a read to count: a writer rewriting the file in place that pauses
// while it is read would otherwise leave a read of a consistent half.
const settle = 100 * time.Millisecond

// ReadFile reads a directory CSV file; see ParseCSV. The file must be a
// regular file, read whole and unchanged while read: one rewritten in
// place meanwhile is an error (replace it atomically: write a temporary
// file, then rename it over the old one).
func ReadFile(path string, extra []string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	before, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !before.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, before.Mode().Type())
	case before.Size() > maxCSVBytes:
		return nil, fmt.Errorf("%s: %w", path, errTooLarge)
	}
	d, err := ParseCSV(f, extra)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	read, err := f.Seek(0, io.SeekCurrent) // ParseCSV read to the end
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err == nil && time.Since(after.ModTime()) < settle {
		time.Sleep(settle - time.Since(after.ModTime()))
		after, err = f.Stat()
	}
	if err != nil {
		return nil, err
	}
	if read != after.Size() || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return nil, fmt.Errorf("%s: changed while read (%d bytes read, %d then %d bytes on disk): "+
			"replace the file atomically, writing a temporary file and renaming it", path, read, before.Size(), after.Size())
	}
	return d, nil
}

// ParseCSV reads a directory from CSV text in UTF-8, with or without a
// byte-order mark, separated by commas or semicolons (as spreadsheets
// write it in many locales). The header names the columns, in any order
// and case: requiredColumns, the optional `account`, the extra columns,
// and any others (ignored). A row with an e-mail already listed is
// dropped and counted in Duplicates: the first one wins.
func ParseCSV(r io.Reader, extra []string) (d *Directory, err error) {
	// A reader past maxCSVBytes is an error, not a silently truncated directory.
	capped := &io.LimitedReader{R: r, N: maxCSVBytes + 1}
	defer func() {
		if capped.N <= 0 {
			d, err = nil, fmt.Errorf("larger than %d MiB: %w", maxCSVBytes>>20, errTooLarge)
		}
	}()
	br := bufio.NewReaderSize(capped, 64<<10)
	if bom, _ := br.Peek(len(utf8BOM)); bytes.Equal(bom, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	head, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	cr := csv.NewReader(br)
	if bytes.Count(head, []byte{';'}) > bytes.Count(head, []byte{','}) {
		cr.Comma = ';'
	}
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header line " + strings.Join(requiredColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	header = slices.Clone(header) // ReuseRecord: the next Read overwrites it
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[name]; dup && name != "" {
			return nil, fmt.Errorf("header: column %q appears twice", name)
		}
		col[name] = i
	}
	var missing []string
	for _, c := range append(slices.Clone(requiredColumns), extra...) {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("header: missing column(s) %q (the header has %q; separator %q)", missing, header, cr.Comma)
	}
	iEmail, iDept, iCC, iSite, iLic := col["email"], col["department"], col["cost_center"], col["site"], col["licence"]
	iAccount, hasAccount := col[accountColumn] // 0 (email) when absent
	iExtra := make([]int, len(extra))
	for i, c := range extra {
		iExtra[i] = col[c]
	}
	d = newDirectory(extra, 1024)
	vals := make([]string, len(extra))
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv.ParseError names the line
		}
		if err := checkUTF8(cr, rec, header, append([]int{iEmail, iDept, iCC, iSite, iLic, iAccount}, iExtra...)); err != nil {
			return nil, err
		}
		e := Entry{Email: rec[iEmail], Department: rec[iDept], CostCenter: rec[iCC], Site: rec[iSite], Licence: rec[iLic]}
		if hasAccount {
			e.Account = rec[iAccount]
		}
		if len(extra) > 0 {
			for i, j := range iExtra {
				vals[i] = rec[j]
			}
			e.Extra = vals
		}
		d.add(e)
	}
	if d.Len() == 0 {
		return nil, fmt.Errorf("no person with an e-mail below the header (%d row(s) without one)", d.NoEmail)
	}
	return d, nil
}

// checkUTF8 fails on a used field that is not UTF-8: its value would be a
// label value client_golang refuses (a file saved in a legacy code page).
func checkUTF8(cr *csv.Reader, rec, header []string, used []int) error {
	for _, i := range used {
		if !utf8.ValidString(rec[i]) {
			line, _ := cr.FieldPos(i)
			return fmt.Errorf("line %d: column %q is not UTF-8 (save the file as UTF-8)", line, strings.TrimSpace(header[i]))
		}
	}
	return nil
}

// errTooLarge is the error of a file larger than maxCSVBytes.
var errTooLarge = errors.New("too large: is this the directory file?")
