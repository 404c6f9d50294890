package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-parking/gatehouse/edge"
)

// Load reads the facility file at path; see Parse. An unreadable file is
// reported as the error from os.ReadFile, wrapped, not as *Problems.
//
// Before parsing, ${NAME} and ${NAME:-default} are replaced by the environment
// variable NAME (or default when NAME is unset or empty), so that one file can serve
// several machines: device addresses, ports and paths. A $ not followed by { is kept.
func Load(path string) (*edge.Facility, error) {
	return LoadEnv(path, os.Getenv)
}

// LoadEnv is Load with the environment given as getenv.
func LoadEnv(path string, getenv func(string) string) (*edge.Facility, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, Expand(data, getenv))
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Expand replaces ${NAME} and ${NAME:-default} in data with values from getenv.
func Expand(data []byte, getenv func(string) string) []byte {
	return envRef.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		if v := getenv(string(sub[1])); v != "" {
			return []byte(v)
		}
		return sub[3]
	})
}

// Parse decodes a facility file, applies the defaults, expands spot ranges
// into spots, checks the result and compiles its tariffs. name labels the
// problems, usually the file's path. If anything is wrong Parse returns a nil
// facility and a *Problems listing every problem found: YAML syntax, unknown
// or repeated keys, values of the wrong type, and broken rules such as a lane
// naming a device that does not exist.
func Parse(name string, data []byte) (*edge.Facility, error) {
	c := newCollector(name)
	f := parse(c, data)
	if err := c.err(); err != nil {
		return nil, err
	}
	for i := range f.Tariffs {
		// Validate passed, so Compile only loads the time zone.
		if err := f.Tariffs[i].Compile(); err != nil {
			c.at(elem("tariffs", i), 0, err.Error())
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// parse runs every stage that can still find problems, so one pass reports
// them all. It returns nil only if the file could not be read as YAML.
func parse(c *collector, data []byte) *edge.Facility {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.at("", 1, "the file is empty")
		} else {
			syntaxError(c, err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		syntaxError(c, err)
		return nil
	default:
		c.at("", extra.Line, `only one YAML document is allowed; remove the second "---"`)
	}
	if len(doc.Content) == 0 || isNull(resolve(doc.Content[0])) {
		c.at("", max(doc.Line, 1), "the file is empty")
		return nil
	}
	root := doc.Content[0]
	c.index[""] = entry{line: root.Line}

	w := &walker{c: c, seen: map[visit]bool{}}
	w.walk(&doc.Content[0], facilityType, "")
	var f edge.Facility
	if err := doc.Decode(&f); err != nil {
		decodeError(c, err)
	}

	applyDefaults(c, &f)
	spotPaths := expandSpots(c, &f)
	check(c, &f, spotPaths)
	return &f
}

// yamlLine matches the line yaml.v3 puts in its messages.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError records a YAML syntax error, which stops parsing.
func syntaxError(c *collector, err error) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		c.at("", line, "invalid YAML: "+m[2])
		return
	}
	msg := err.Error()
	if len(msg) > 6 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	c.at("", 1, "invalid YAML: "+msg)
}

// decodeError records what yaml.v3 still objects to after the walker has
// repaired the tree, such as excessive aliasing. It should be rare: the walker
// reports type errors itself, with their field paths.
func decodeError(c *collector, err error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		c.decodeErr("", 0, err.Error())
		return
	}
	for _, e := range te.Errors {
		if m := yamlLine.FindStringSubmatch(e); m != nil {
			line, _ := strconv.Atoi(m[1])
			c.decodeErr(c.pathAt(line), line, m[2])
			continue
		}
		c.decodeErr("", 0, e)
	}
}
