// Command gen writes the dashboards' JSON files into the current directory;
// `go generate ./...` runs it in dashboards/.
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/umeeting/umeeting_exporter/dashboards"
)

func main() {
	files, err := dashboards.Files()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(name, files[name], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
