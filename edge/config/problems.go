package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Problem is one mistake in a facility file.
type Problem struct {
	// File is the name the file was loaded or parsed under.
	File string
	// Line is the 1-based line of the offending key, or of the nearest
	// enclosing key or list item when the key is missing; 0 if unknown.
	Line int
	// Path is the field path in yaml keys, such as "lanes[2].barrier"; empty
	// for problems with the file as a whole.
	Path string
	// Message says what is wrong, in terms an operator can act on.
	Message string
}

// String formats p as "file:line: field.path: message", leaving out the
// line if it is unknown and the path if it is empty.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is the error Load and Parse return when a facility file is not
// usable. It lists every problem found, in line order, not only the first.
type Problems struct {
	// List holds the problems sorted by line; problems on the same line keep
	// the order they were found in.
	List []Problem
}

// Error lists every problem on its own line as "file:line: field.path: message".
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, pr := range p.List {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns an *edge.Error with code EINVALID carrying the problem list,
// so edge.ErrorCode reports a bad facility file as invalid input.
func (p *Problems) Unwrap() error {
	return &edge.Error{Code: edge.EINVALID, Message: p.Error()}
}

// collector gathers problems by field path and resolves their lines from the
// file's node tree at the end, so the checks need not know about YAML.
type collector struct {
	file  string
	index map[string]entry // field path → where it is in the file
	list  []Problem
	// bad holds the paths whose values failed to decode; checks on them or
	// on anything below them would only repeat the problem.
	bad map[string]bool
}

// entry locates a field in the file.
type entry struct {
	line int
	null bool   // the key is present with no value (or a value dropped as unusable)
	text string // the value as written, if it is a scalar
}

// newCollector returns an empty collector for the named file.
func newCollector(file string) *collector {
	return &collector{file: file, index: map[string]entry{}, bad: map[string]bool{}}
}

// decodeErr records a problem found while decoding the value at path;
// line 0 means the line of path.
func (c *collector) decodeErr(path string, line int, msg string) {
	c.bad[path] = true
	c.list = append(c.list, Problem{File: c.file, Line: line, Path: path, Message: msg})
}

// at records a problem at path on the given line (0: the line of path)
// without marking path as undecodable.
func (c *collector) at(path string, line int, msg string) {
	c.list = append(c.list, Problem{File: c.file, Line: line, Path: path, Message: msg})
}

// add records a semantic problem at path unless path or one of its parents
// already failed to decode.
func (c *collector) add(path, msg string) {
	if c.tainted(path) {
		return
	}
	c.list = append(c.list, Problem{File: c.file, Path: path, Message: msg})
}

// tainted reports whether path or one of its parents failed to decode.
func (c *collector) tainted(path string) bool {
	for {
		if c.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parent(path)
	}
}

// line returns the line of path, or of its nearest parent present in the file.
func (c *collector) line(path string) int {
	for {
		if e, ok := c.index[path]; ok {
			return e.line
		}
		if path == "" {
			return 0
		}
		path = parent(path)
	}
}

// pathAt returns the deepest field path on line, or "" if none is.
func (c *collector) pathAt(line int) string {
	best := ""
	for p, e := range c.index {
		if e.line == line && (len(p) > len(best) || len(p) == len(best) && p < best) {
			best = p
		}
	}
	return best
}

// present reports whether the file sets path to a value (not null).
func (c *collector) present(path string) bool {
	e, ok := c.index[path]
	return ok && !e.null
}

// err returns the collected problems, with lines resolved, sorted and
// de-duplicated, or nil if there are none.
func (c *collector) err() error {
	if len(c.list) == 0 {
		return nil
	}
	for i := range c.list {
		if c.list[i].Line == 0 {
			c.list[i].Line = c.line(c.list[i].Path)
		}
	}
	slices.SortStableFunc(c.list, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	seen := make(map[Problem]bool, len(c.list))
	var list []Problem
	for _, p := range c.list {
		if !seen[p] {
			seen[p] = true
			list = append(list, p)
		}
	}
	return &Problems{List: list}
}

// parent strips the last element from a field path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// join appends a key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// elem appends a list index to a field path.
func elem(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
