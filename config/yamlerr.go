package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v2"
	yamlnode "go.yaml.in/yaml/v3"
)

// Decoding is done by yaml.v2, whose strict mode Prometheus' own types
// (HTTPClientConfig, Secret) are written for. Its errors name Go types and
// sometimes the wrong line, so a failed decode is explained again from the
// yaml.v3 node tree, which knows the line of every key: each error names
// the field path (accounts[0].api_secert) and its line, and an unknown key
// comes with the nearest known one.

// explain turns an error of yaml.v2 decoding content into a Config into
// errors that name the field path and the right line.
func explain(content []byte, err error) error {
	var root yamlnode.Node
	if perr := yamlnode.Unmarshal(content, &root); perr != nil {
		return explainSyntax(content, err)
	}
	doc := &root
	if doc.Kind == yamlnode.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	var terr *yaml.TypeError
	if !errors.As(err, &terr) {
		// A custom unmarshaler failed (http_client_config checks itself
		// while decoding): find the deepest field whose value alone fails
		// the same way.
		if path, line := locate(doc, reflect.TypeFor[Config](), "", err.Error()); path != "" {
			return fmt.Errorf("%s (line %d): %w", path, line, err)
		}
		return err
	}
	var errs []error
	walkKeys(doc, reflect.TypeFor[Config](), "", func(e error) { errs = append(errs, e) })
	for _, msg := range terr.Errors {
		line, rest := splitLine(msg)
		if strings.HasPrefix(rest, "field ") && strings.Contains(rest, " not found in type ") {
			if len(errs) == 0 {
				errs = append(errs, errors.New(msg)) // not found by the walk: keep yaml's words
			}
			continue
		}
		if path := pathAtLine(doc, line); path != "" {
			errs = append(errs, fmt.Errorf("%s (line %d): %s", path, line, plainTypeError(rest)))
		} else {
			errs = append(errs, errors.New(msg))
		}
	}
	return errors.Join(errs...)
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// splitLine splits "line N: text" into N and text.
func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

var typeErrRE = regexp.MustCompile("^cannot unmarshal !!(\\w+) (`.*`|) ?into (.+)$")

// plainTypeError rewords "cannot unmarshal !!str `abc` into int" for a
// person: what was found, and what is expected.
func plainTypeError(msg string) string {
	if strings.HasPrefix(msg, "field ") && strings.Contains(msg, " already set in type ") {
		return "set more than once"
	}
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[3]
	switch {
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		want = "a whole number"
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map[") || strings.HasPrefix(want, "config."):
		want = "a mapping of keys to values"
	case want == "string":
		want = "a single value"
	}
	found := map[string]string{"str": "text", "int": "a number", "float": "a number", "bool": "true/false",
		"seq": "a list", "map": "a mapping", "null": "nothing"}[m[1]]
	if found == "" {
		found = m[1]
	}
	if m[2] != "" && m[1] != "seq" && m[1] != "map" {
		found += " " + strings.ReplaceAll(m[2], "`", `"`)
	}
	return fmt.Sprintf("expected %s, found %s", want, found)
}

// parserProblems are the problems libyaml's parser (not its scanner)
// reports; yaml.v2 prints their line 0-based, one less than the line that
// holds the offending token.
var parserProblems = []string{
	"did not find expected <document start>", "did not find expected node content",
	"did not find expected key", "did not find expected '-' indicator",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
}

// indentationProblems are the syntax errors a misplaced indentation causes.
var indentationProblems = []string{
	"did not find expected key", "did not find expected '-' indicator",
	"mapping values are not allowed in this context", "found a tab character that violates indentation",
	"block sequence entries are not allowed in this context",
}

// explainSyntax fixes the line of a syntax error and names the last field
// before it.
func explainSyntax(content []byte, err error) error {
	line, problem := splitLine(err.Error())
	if line == 0 {
		return err
	}
	if slices.Contains(parserProblems, problem) {
		line++
	}
	msg := fmt.Sprintf("line %d", line)
	if path := lastPathBefore(content, line); path != "" {
		msg += " (after " + path + ")"
	}
	msg += ": " + problem
	if slices.Contains(indentationProblems, problem) {
		msg += fmt.Sprintf("; check the indentation of line %d against the lines above it (spaces only, no tabs)", line)
	}
	return errors.New(msg)
}

// lastPathBefore parses the lines before line and returns the path of the
// last key they hold.
func lastPathBefore(content []byte, line int) string {
	lines := strings.SplitAfter(string(content), "\n")
	if line-1 > len(lines) {
		return ""
	}
	var root yamlnode.Node
	if yamlnode.Unmarshal([]byte(strings.Join(lines[:line-1], "")), &root) != nil {
		return ""
	}
	best, bestLine := "", 0
	visit(&root, "", func(path string, key *yamlnode.Node) {
		if key.Line >= bestLine {
			best, bestLine = path, key.Line
		}
	})
	return best
}

// visit calls fn for every mapping key under n, with its path.
func visit(n *yamlnode.Node, path string, fn func(path string, key *yamlnode.Node)) {
	switch n.Kind {
	case yamlnode.DocumentNode:
		for _, c := range n.Content {
			visit(c, path, fn)
		}
	case yamlnode.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(path, n.Content[i].Value)
			fn(p, n.Content[i])
			visit(n.Content[i+1], p, fn)
		}
	case yamlnode.SequenceNode:
		for i, c := range n.Content {
			visit(c, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// pathAtLine returns the path of the key whose key or value is on line.
func pathAtLine(doc *yamlnode.Node, line int) string {
	found := ""
	visit(doc, "", func(path string, key *yamlnode.Node) {
		if key.Line == line && found == "" {
			found = path
		}
	})
	return found
}

// structFields returns the yaml keys of struct type t and their types,
// inline fields flattened; open says an inline map accepts any key.
func structFields(t reflect.Type) (fields map[string]reflect.Type, open bool) {
	fields = map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			ft := deref(f.Type)
			if ft.Kind() == reflect.Map {
				open = true
				continue
			}
			sub, subOpen := structFields(ft)
			maps.Copy(fields, sub)
			open = open || subOpen
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields, open
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// child is a value under a mapping or sequence node, with its path, the
// line of its key (of itself in a sequence) and the Go type it decodes to.
type child struct {
	path string
	line int
	node *yamlnode.Node
	t    reflect.Type
}

// children returns the values under n that type t knows; unknown (may be
// nil) is called with each key of a struct's mapping that t does not know.
func children(n *yamlnode.Node, t reflect.Type, path string, unknown func(path string, key *yamlnode.Node, known map[string]reflect.Type)) []child {
	var out []child
	switch t = deref(t); {
	case n.Kind == yamlnode.MappingNode && t.Kind() == reflect.Struct:
		fields, open := structFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, p := n.Content[i], joinPath(path, n.Content[i].Value)
			if ft, ok := fields[key.Value]; ok {
				out = append(out, child{p, key.Line, n.Content[i+1], ft})
			} else if !open && unknown != nil {
				unknown(p, key, fields)
			}
		}
	case n.Kind == yamlnode.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, child{joinPath(path, n.Content[i].Value), n.Content[i].Line, n.Content[i+1], t.Elem()})
		}
	case n.Kind == yamlnode.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			out = append(out, child{fmt.Sprintf("%s[%d]", path, i), c.Line, c, t.Elem()})
		}
	}
	return out
}

// walkKeys reports every key of n that type t does not know, with its
// path, line, the nearest known key, and where the key would belong if it
// is known elsewhere (a wrong indentation).
func walkKeys(n *yamlnode.Node, t reflect.Type, path string, report func(error)) {
	for _, c := range children(n, t, path, func(p string, key *yamlnode.Node, known map[string]reflect.Type) {
		report(unknownKey(p, key, known))
	}) {
		walkKeys(c.node, c.t, c.path, report)
	}
}

// sections are where each key of the file belongs, for keys written at
// the wrong indentation.
var sections = map[string]reflect.Type{
	"the top level":           reflect.TypeFor[Config](),
	"an account (accounts[])": reflect.TypeFor[Account](),
	"metrics":                 reflect.TypeFor[Metrics](),
}

func unknownKey(path string, key *yamlnode.Node, known map[string]reflect.Type) error {
	msg := fmt.Sprintf("%s (line %d): unknown key", path, key.Line)
	names := slices.Sorted(maps.Keys(known))
	for _, where := range slices.Sorted(maps.Keys(sections)) {
		if fields, _ := structFields(sections[where]); fields[key.Value] != nil {
			return fmt.Errorf("%s here; %s is a key of %s: check its indentation", msg, key.Value, where)
		}
	}
	if near := nearest(key.Value, names); near != "" {
		return fmt.Errorf("%s; did you mean %s?", msg, near)
	}
	return fmt.Errorf("%s; known keys here: %s", msg, strings.Join(names, ", "))
}

// nearest returns the known name closest to s in edit distance, if it is
// close enough to be a typo (at most a third of its length, at least 1).
func nearest(s string, names []string) string {
	best, bestD := "", max(1, len(s)/3)+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment): a swap of two neighbours counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// locate returns the path and line of the deepest value under n whose
// decoding alone fails with msg.
func locate(n *yamlnode.Node, t reflect.Type, path, msg string) (string, int) {
	for _, c := range children(n, t, path, nil) {
		text, err := yamlnode.Marshal(c.node)
		if err != nil {
			continue
		}
		v := reflect.New(c.t)
		if derr := yaml.UnmarshalStrict(text, v.Interface()); derr != nil && derr.Error() == msg {
			if p, l := locate(c.node, c.t, c.path, msg); p != "" {
				return p, l
			}
			return c.path, c.line
		}
	}
	return "", 0
}
