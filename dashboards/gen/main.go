// Command gen writes the dashboards' JSON files into the current directory;
// `go generate ./...` runs it in dashboards/.
package main

import (
	"fmt"
	"os"

	"github.com/umeeting/umeeting_exporter/dashboards"
)

func main() {
	files, err := dashboards.Files()
	for name, b := range files {
		if err == nil {
			err = os.WriteFile(name, b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
