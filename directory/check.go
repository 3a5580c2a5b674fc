package directory

import (
	"context"
	"fmt"
	"slices"

	"github.com/umeeting/umeeting_exporter/config"
)

// Check reads the local directory file of cfg, as --config.check does:
// it fails when the file cannot be read or lacks a column, within the
// file's timeout. It warns about licence types held in the file that
// tariffs.monthly does not price (they would cost 0). LDAP is not read:
// a check must not depend on a server.
func Check(cfg *config.Config) (warnings []string, err error) {
	c := cfg.Directory
	if c == nil || c.File == "" {
		return nil, nil
	}
	d, err := fileSource(c).readBounded(context.Background())
	if err != nil {
		return nil, fmt.Errorf("directory: file: %w", err)
	}
	if cfg.Tariffs == nil || len(cfg.Tariffs.Monthly) == 0 {
		return nil, nil
	}
	var unpriced []string
	for _, e := range d.Entries() {
		if _, ok := cfg.Tariffs.MonthlyPrice(e.Licence); e.Licence != "" && !ok && !slices.Contains(unpriced, e.Licence) {
			unpriced = append(unpriced, e.Licence)
			warnings = append(warnings, fmt.Sprintf("tariffs: monthly: no price for licence type %q, held in %s: its licences cost 0", e.Licence, c.File))
		}
	}
	return warnings, nil
}
