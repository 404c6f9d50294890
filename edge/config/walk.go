package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/tariff"
)

// walker checks a node tree against the Go type it is about to be decoded
// into, before yaml.v3 sees it. yaml.v3 stops at the first value a
// TextUnmarshaler rejects and reports unknown keys without their field path,
// so the walker finds those problems itself, with paths and lines, and
// repairs the tree (dropping unknown keys, blanking bad values) so that the
// final decode succeeds and the semantic checks still run on the rest.
// Along the way it records where every field path is in the file.
type walker struct {
	c *collector
	// seen records each node checked against a type and whether it could
	// not be decoded. Aliases never walk the same node as the same type
	// twice, which bounds the work on alias bombs and breaks alias cycles;
	// a problem inside an anchor is reported once, at the anchor.
	seen map[visit]bool
}

// visit is one node checked against one type.
type visit struct {
	n *yaml.Node
	t reflect.Type
}

var (
	facilityType        = reflect.TypeFor[edge.Facility]()
	timeType            = reflect.TypeFor[time.Time]()
	durationType        = reflect.TypeFor[edge.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk checks the node in *slot against t; path is its field path, already
// in the index. A value that cannot be decoded is reported and its slot is
// given a blank: the node itself is left alone, since an anchor may share it
// with uses where it is fine.
func (w *walker) walk(slot **yaml.Node, t reflect.Type, path string) {
	n := resolve(*slot)
	if n == nil || isNull(n) {
		return
	}
	v := visit{n, t}
	if bad, ok := w.seen[v]; ok {
		if bad { // reported at the first use; blank this one too
			w.c.bad[path] = true
			w.blank(slot, t, path)
		}
		return
	}
	w.seen[v] = false
	var ok bool
	switch {
	case isLeaf(t):
		ok = w.leaf(n, t, path)
	case t.Kind() == reflect.Struct:
		ok = w.mapping(n, t, path, structKeys(t))
	case t.Kind() == reflect.Map:
		ok = w.mapping(n, t, path, nil)
	case t.Kind() == reflect.Slice:
		ok = w.sequence(n, t, path)
	case t.Kind() == reflect.Pointer:
		w.walk(&n, t.Elem(), path)
		ok = n == resolve(*slot)
	default:
		ok = w.leaf(n, t, path)
	}
	if !ok {
		w.seen[v] = true
		w.blank(slot, t, path)
	}
}

// blank puts an empty value in *slot that decodes to the zero value of t
// without an error and, unlike null, is not dropped from lists.
func (w *walker) blank(slot **yaml.Node, t reflect.Type, path string) {
	old := *slot
	b := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: old.Line, Column: old.Column}
	if !isLeaf(t) {
		switch t.Kind() {
		case reflect.Struct, reflect.Map:
			b.Kind, b.Tag = yaml.MappingNode, "!!map"
		case reflect.Slice:
			b.Kind, b.Tag = yaml.SequenceNode, "!!seq"
		}
	} else if !reflect.PointerTo(t).Implements(textUnmarshalerType) {
		switch t.Kind() {
		case reflect.String:
			b.Tag = "!!str"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			b.Tag, b.Value = "!!int", "0"
		case reflect.Float32, reflect.Float64:
			b.Tag, b.Value = "!!float", "0"
		case reflect.Bool:
			b.Tag, b.Value = "!!bool", "false"
		}
	}
	*slot = b
	w.c.index[path] = entry{line: w.c.line(path), null: true}
}

// mapping checks a struct (keys from fields) or a map (fields nil). It drops
// unknown and repeated keys, which are reported.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string, fields map[string]reflect.Type) bool {
	if n.Kind != yaml.MappingNode {
		w.mismatch(n, t, path)
		return false
	}
	kept := make([]*yaml.Node, 0, len(n.Content))
	first := map[string]int{} // key → line it was first set on
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			if !mergeable(v) {
				w.c.decodeErr(path, k.Line, "<< must merge a mapping or a list of mappings")
				continue
			}
			kept = append(kept, k, v)
			merges = append(merges, v)
			continue
		}
		key, ok := keyString(k)
		if !ok {
			w.c.at(path, k.Line, "keys must be plain text, got "+got(k))
			continue
		}
		p := join(path, key)
		if line, dup := first[key]; dup {
			w.c.at(p, k.Line, fmt.Sprintf("set twice; first set on line %d", line))
			continue
		}
		var ft reflect.Type
		if fields == nil {
			ft = t.Elem()
		} else if ft, ok = fields[key]; !ok {
			w.c.at(p, k.Line, unknownField(key, fields))
			continue
		}
		first[key] = k.Line
		// A key of the mapping itself beats the same key merged in with <<.
		if _, ok := w.c.index[p]; !ok {
			w.c.index[p] = locate(k.Line, v)
		}
		w.walk(&n.Content[i+1], ft, p)
		kept = append(kept, k, n.Content[i+1])
	}
	n.Content = kept
	for _, m := range merges {
		m = resolve(m)
		if m.Kind == yaml.SequenceNode {
			for j := range m.Content {
				w.walk(&m.Content[j], t, path)
			}
			continue
		}
		w.walk(&m, t, path)
	}
	return true
}

// sequence checks a list.
func (w *walker) sequence(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.SequenceNode {
		w.mismatch(n, t, path)
		return false
	}
	for i, e := range n.Content {
		p := elem(path, i)
		w.c.index[p] = locate(e.Line, e)
		if r := resolve(e); r == nil || isNull(r) {
			// yaml.v3 drops null items, which would shift the index of every
			// later item away from its path; keep a blank in its place.
			w.c.decodeErr(p, 0, "empty list item")
			w.blank(&n.Content[i], t.Elem(), p)
			continue
		}
		w.walk(&n.Content[i], t.Elem(), p)
	}
	return true
}

// leaf checks a value that yaml.v3 decodes in one piece: a scalar, or a type
// with its own UnmarshalText or UnmarshalYAML.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) bool {
	_, custom := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	if n.Kind != yaml.ScalarNode && !custom {
		w.mismatch(n, t, path)
		return false
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil && isInteger(t) && n.ShortTag() == "!!float" {
		// yaml.v3 truncates 2.50 to 2; for a price in cents that is a silent
		// 248-cent discount.
		err = fmt.Errorf("not a whole number")
	}
	if err != nil {
		w.c.decodeErr(path, 0, leafMessage(n, t, path, err))
		return false
	}
	return true
}

// mismatch reports a value of the wrong shape.
func (w *walker) mismatch(n *yaml.Node, t reflect.Type, path string) {
	w.c.decodeErr(path, 0, "must be "+want(t)+", got "+got(n))
}

// locate returns the index entry for a key on line whose value is v.
func locate(line int, v *yaml.Node) entry {
	r := resolve(v)
	e := entry{line: line, null: r == nil || isNull(r)}
	if r != nil && r.Kind == yaml.ScalarNode {
		e.text = r.Value
	}
	return e
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// isNull reports whether n is an explicit or empty null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isMerge reports whether k is the merge key <<, as yaml.v3 decides it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" &&
		(k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// mergeable reports whether yaml.v3 can merge v: a mapping or a list of them.
func mergeable(v *yaml.Node) bool {
	v = resolve(v)
	switch {
	case v == nil:
		return false
	case v.Kind == yaml.MappingNode:
		return true
	case v.Kind == yaml.SequenceNode:
		for _, e := range v.Content {
			if e = resolve(e); e == nil || e.Kind != yaml.MappingNode {
				return false
			}
		}
		return true
	}
	return false
}

// keyString returns the text of a mapping key.
func keyString(k *yaml.Node) (string, bool) {
	k = resolve(k)
	switch {
	case k == nil || k.Kind != yaml.ScalarNode:
		return "", false
	case isNull(k):
		return "", true
	}
	return k.Value, true
}

// isLeaf reports whether yaml.v3 decodes t from one scalar or by itself.
func isLeaf(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	if pt.Implements(textUnmarshalerType) {
		return true
	}
	if _, ok := pt.MethodByName("UnmarshalYAML"); ok {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Pointer:
		return false
	}
	return true
}

// isInteger reports whether t is decoded as a plain integer.
func isInteger(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// structKeys maps the yaml keys of struct t to field types, following
// yaml.v3's tag rules, inline structs included.
func structKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(flags, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structKeys(ft) {
					keys[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = f.Type
	}
	return keys
}

// unknownField describes an unknown key, suggesting the nearest known one.
func unknownField(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	// Up to two edits, and fewer than half the key, so that "a" does not
	// suggest "id".
	best, bestD := "", min(3, (len(key)+1)/2)
	for _, k := range names {
		if d := distance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", best)
	}
	return "unknown field; known fields are " + strings.Join(names, ", ")
}

// distance is the Levenshtein distance between a and b, in bytes; long keys
// are not worth comparing.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// leafMessage explains why a scalar does not fit t.
func leafMessage(n *yaml.Node, t reflect.Type, path string, err error) string {
	switch {
	case t == durationType:
		return "must be a duration such as 800ms, 30s or 5m, got " + got(n)
	case t == timeType:
		return "must be a date such as 2026-01-31, a local time such as 2026-01-31 08:00:00, " +
			"or a time with an offset such as 2026-01-31T08:00:00+01:00, got " + got(n)
	case isInteger(t):
		msg := "must be " + want(t) + ", got " + got(n)
		if t.Kind() == reflect.Int64 && strings.HasPrefix(path, "tariffs") {
			msg += " (amounts are in minor units: write 250 for 2.50)"
		}
		return msg
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		// The type's own message (tariff durations, clock times) says what it wants.
		if _, ok := err.(*yaml.TypeError); !ok {
			return err.Error()
		}
	}
	return "must be " + want(t) + ", got " + got(n)
}

// want names what a value of type t looks like in a file.
func want(t reflect.Type) string {
	switch t {
	case timeType:
		return "a date or a date and time"
	case durationType, reflect.TypeFor[tariff.Duration]():
		return "a duration such as 30s or 15m"
	case reflect.TypeFor[tariff.Clock]():
		return `a time of day such as "07:30"`
	}
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return "text"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys to values"
	}
	return "a " + t.String()
}

// got describes a node as found in the file.
func got(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	s := n.Value
	if len(s) > 40 {
		s = s[:40]
		for !utf8.ValidString(s) && len(s) > 36 {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return strconv.Quote(s)
}
