package directory

import _ "embed" // the demo directory

// DemoCSV is the directory of the --demo company (the simulator with seed
// 1): its hosts with departments, cost centres, sites and licences, a few
// hosts missing (they count as "(unknown)"), a few licences that differ
// from the API's user_type, people without a licence, and licence holders
// who never held a meeting. TestDemoCSV regenerates it.
//
//go:embed demo_directory.csv
var DemoCSV []byte
