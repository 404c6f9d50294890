package modbus

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Table is one of the four Modbus data tables.
type Table string

// The Modbus data tables.
const (
	Coil            Table = "coil"             // read/write bits (function codes 1, 5)
	DiscreteInput   Table = "discrete_input"   // read-only bits (function code 2)
	HoldingRegister Table = "holding_register" // read/write 16-bit registers (3, 6)
	InputRegister   Table = "input_register"   // read-only 16-bit registers (4)
)

// IsBit reports whether the table holds bits rather than registers.
func (t Table) IsBit() bool { return t == Coil || t == DiscreteInput }

// Writable reports whether a master can write the table.
func (t Table) Writable() bool { return t == Coil || t == HoldingRegister }

func (t Table) valid() bool {
	return t == Coil || t == DiscreteInput || t == HoldingRegister || t == InputRegister
}

// ValueType is how a resource's bits or registers are read as a value.
type ValueType string

// Value types.
const (
	Bool    ValueType = "bool"
	Uint16  ValueType = "uint16"
	Int16   ValueType = "int16"
	Uint32  ValueType = "uint32"
	Int32   ValueType = "int32"
	Float32 ValueType = "float32"
)

// Words is the number of 16-bit registers a value of type t takes in a register table.
func (t ValueType) Words() int {
	switch t {
	case Uint32, Int32, Float32:
		return 2
	}
	return 1
}

func (t ValueType) valid() bool {
	switch t {
	case Bool, Uint16, Int16, Uint32, Int32, Float32:
		return true
	}
	return false
}

// Order is a byte or word order: "big" (the Modbus default) or "little".
type Order string

// Byte and word orders.
const (
	Big    Order = "big"
	Little Order = "little"
)

// ProfileKind says what sort of device a profile describes.
type ProfileKind string

// Profile kinds.
const (
	KindBarrier    ProfileKind = "barrier"
	KindLoop       ProfileKind = "loop"
	KindSpotSensor ProfileKind = "spot_sensor"
	KindIOModule   ProfileKind = "io_module"
)

// Resource is one named value of a device: where it lives (table, address, bit) and
// how its raw bits or registers become a number.
type Resource struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	Table       Table  `yaml:"table"`
	// Address is the zero-based (PDU) address of the bit or first register.
	Address int `yaml:"address"`
	// Bit, for a bool in a register table, is the bit (0 = least significant) that
	// holds it. Without Bit a register bool is true when the register is not zero.
	Bit *int `yaml:"bit,omitempty"`
	// Type defaults to bool in bit tables and to uint16 in register tables.
	Type ValueType `yaml:"type,omitempty"`
	// Scale multiplies the raw number (default 1); ignored for bools.
	Scale *float64 `yaml:"scale,omitempty"`
	// ByteOrder is the order of the two bytes inside each register (default big, as
	// the Modbus standard says); WordOrder the order of the two registers of a 32-bit
	// value (default big: the first register holds the high word).
	ByteOrder Order `yaml:"byte_order,omitempty"`
	WordOrder Order `yaml:"word_order,omitempty"`
	// Unit is the physical unit of the scaled value, for people only.
	Unit string `yaml:"unit,omitempty"`
}

// Words is how many registers the resource spans (1 in bit tables, where it is one bit).
func (r *Resource) Words() int {
	if r.Table.IsBit() || r.Type == Bool {
		return 1
	}
	return r.Type.Words()
}

// ScaleFactor is Scale, or 1 when the profile gives none.
func (r *Resource) ScaleFactor() float64 {
	if r.Scale == nil {
		return 1
	}
	return *r.Scale
}

// Rule says when a loop or spot sensor counts as occupied, from one resource's value:
// below a threshold, above it, or, for a flag, when the flag has the given value.
// With none of Below, Above and Flag set the resource means occupied when not zero.
type Rule struct {
	Resource string   `yaml:"resource"`
	Below    *float64 `yaml:"below,omitempty"`
	Above    *float64 `yaml:"above,omitempty"`
	Flag     *bool    `yaml:"flag,omitempty"`
}

// Occupied applies the rule to a decoded value (bools decode as 0 and 1).
func (r Rule) Occupied(v float64) bool {
	switch {
	case r.Below != nil:
		return v < *r.Below
	case r.Above != nil:
		return v > *r.Above
	case r.Flag != nil:
		return (v != 0) == *r.Flag
	}
	return v != 0
}

// BarrierMap names the resources of a barrier controller.
type BarrierMap struct {
	// Command is the coil or holding register that commands the arm.
	Command string `yaml:"command"`
	// Open and Close are the values written to Command (default 1 and 0).
	Open  *int `yaml:"open,omitempty"`
	Close *int `yaml:"close,omitempty"`
	// Up and Down are the bools that say the arm is at its upper or lower end stop.
	Up   string `yaml:"up"`
	Down string `yaml:"down"`
}

// OpenValue is Open or its default, 1.
func (b *BarrierMap) OpenValue() uint16 {
	if b.Open == nil {
		return 1
	}
	return uint16(*b.Open)
}

// CloseValue is Close or its default, 0.
func (b *BarrierMap) CloseValue() uint16 {
	if b.Close == nil {
		return 0
	}
	return uint16(*b.Close)
}

// Profile is the register map of one model of device, kept as data (YAML) in the
// spirit of EdgeX device profiles: the driver polls and decodes what a profile names,
// so a new device model needs a file, not code.
type Profile struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description,omitempty"`
	Kind        ProfileKind `yaml:"kind"`
	Resources   []Resource  `yaml:"resources"`
	// Occupied is how a loop or spot sensor of this model says it is occupied.
	Occupied *Rule `yaml:"occupied,omitempty"`
	// Fault names a resource that is true or non-zero while the device reports a
	// fault of its own: a barrier then reports PositionFault, other devices unhealthy.
	Fault string `yaml:"fault,omitempty"`
	// Barrier maps the resources of a barrier controller (kind barrier only).
	Barrier *BarrierMap `yaml:"barrier,omitempty"`

	// Source is the file the profile came from.
	Source string `yaml:"-"`
}

// Resource returns the resource called name.
func (p *Profile) Resource(name string) (*Resource, bool) {
	for i := range p.Resources {
		if p.Resources[i].Name == name {
			return &p.Resources[i], true
		}
	}
	return nil, false
}

// ProfileError lists every problem found in one profile document.
type ProfileError struct {
	Source   string // file or "<builtin>/name.yaml"
	Profile  string // the profile's name, if it has one
	Problems []string
}

// Error lists the problems on one line.
func (e *ProfileError) Error() string {
	where := e.Source
	if e.Profile != "" {
		where = fmt.Sprintf("%s: profile %q", e.Source, e.Profile)
	}
	return fmt.Sprintf("modbus: %s: %s", where, strings.Join(e.Problems, "; "))
}

var profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Validate checks the profile and fills in defaults (types, byte and word orders).
// It returns a *ProfileError listing every problem, or nil.
func (p *Profile) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if p.Name == "" {
		add("name: required")
	} else if !profileName.MatchString(p.Name) {
		add("name %q: use lower-case letters, digits, '.', '_' and '-'", p.Name)
	}
	switch p.Kind {
	case KindBarrier, KindLoop, KindSpotSensor, KindIOModule:
	case "":
		add("kind: required (barrier, loop, spot_sensor or io_module)")
	default:
		add("kind %q: want barrier, loop, spot_sensor or io_module", p.Kind)
	}
	if len(p.Resources) == 0 {
		add("resources: at least one required")
	}
	seen := map[string]bool{}
	for i := range p.Resources {
		r := &p.Resources[i]
		at := fmt.Sprintf("resources[%d]", i)
		if r.Name != "" {
			at = fmt.Sprintf("resource %q", r.Name)
		}
		for _, s := range r.check() {
			add("%s: %s", at, s)
		}
		if r.Name != "" {
			if seen[r.Name] {
				add("%s: defined twice", at)
			}
			seen[r.Name] = true
		}
	}
	res := func(field, name string) *Resource {
		if name == "" {
			add("%s: required", field)
			return nil
		}
		r, ok := p.Resource(name)
		if !ok {
			add("%s: no resource %q", field, name)
			return nil
		}
		return r
	}
	isBool := func(r *Resource) bool { return r.Table.IsBit() || r.Type == Bool }

	if o := p.Occupied; o != nil {
		r := res("occupied.resource", o.Resource)
		n := 0
		for _, set := range []bool{o.Below != nil, o.Above != nil, o.Flag != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			add("occupied: give one of below, above and flag")
		}
		for _, f := range []*float64{o.Below, o.Above} {
			if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
				add("occupied: threshold must be a finite number")
			}
		}
		if r != nil && isBool(r) && (o.Below != nil || o.Above != nil) {
			add("occupied: resource %q is a bool: use flag, not a threshold", r.Name)
		}
	} else if p.Kind == KindSpotSensor {
		add("occupied: required for a spot_sensor (resource and below, above or flag)")
	}
	if p.Fault != "" {
		res("fault", p.Fault)
	}
	if b := p.Barrier; b != nil {
		if p.Kind != KindBarrier {
			add("barrier: only for kind barrier")
		}
		if c := res("barrier.command", b.Command); c != nil {
			switch {
			case !c.Table.Writable():
				add("barrier.command: resource %q is in table %s, which cannot be written: use a coil or holding_register", c.Name, c.Table)
			case c.Table == Coil:
				for _, v := range []*int{b.Open, b.Close} {
					if v != nil && *v != 0 && *v != 1 {
						add("barrier: open and close of a coil command must be 0 or 1")
						break
					}
				}
			case c.Words() != 1 || c.Bit != nil:
				add("barrier.command: resource %q must be one whole register (uint16 or int16)", c.Name)
			}
			if c.Table == HoldingRegister && (b.Open == nil || b.Close == nil) {
				add("barrier: open and close values are required for a holding_register command")
			}
		}
		for _, v := range []*int{b.Open, b.Close} {
			if v != nil && (*v < 0 || *v > math.MaxUint16) {
				add("barrier: open and close must be 0..65535")
				break
			}
		}
		if b.OpenValue() == b.CloseValue() {
			add("barrier: open and close must differ")
		}
		for _, f := range []struct{ field, name string }{{"barrier.up", b.Up}, {"barrier.down", b.Down}} {
			if r := res(f.field, f.name); r != nil && !isBool(r) {
				add("%s: resource %q must be a bool", f.field, r.Name)
			}
		}
	} else if p.Kind == KindBarrier {
		add("barrier: required for kind barrier (command, up, down)")
	}
	if len(probs) > 0 {
		return &ProfileError{Source: p.Source, Profile: p.Name, Problems: probs}
	}
	return nil
}

// check validates one resource and fills in its defaults.
func (r *Resource) check() []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if r.Name == "" {
		add("name: required")
	}
	if !r.Table.valid() {
		if r.Table == "" {
			add("table: required (coil, discrete_input, holding_register or input_register)")
		} else {
			add("table %q: want coil, discrete_input, holding_register or input_register", r.Table)
		}
	}
	if r.Type == "" {
		r.Type = Uint16
		if r.Table.IsBit() || r.Bit != nil {
			r.Type = Bool
		}
	}
	if !r.Type.valid() {
		add("type %q: want bool, uint16, int16, uint32, int32 or float32", r.Type)
	}
	if r.Table.IsBit() && r.Type != Bool {
		add("type %s: a %s holds one bit: use bool", r.Type, r.Table)
	}
	if r.Address < 0 || r.Address+r.Words()-1 > math.MaxUint16 {
		add("address %d: out of range 0..65535", r.Address)
	}
	if r.Bit != nil {
		switch {
		case r.Table.IsBit():
			add("bit: only for registers")
		case *r.Bit < 0 || *r.Bit > 15:
			add("bit %d: want 0..15", *r.Bit)
		}
		if r.Type != Bool {
			add("bit: the type of a bit must be bool")
		}
	}
	if r.Scale != nil {
		if s := *r.Scale; s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			add("scale: must be a finite number other than 0")
		}
		if r.Type == Bool {
			add("scale: a bool has no scale")
		}
	}
	for _, o := range []struct {
		field string
		v     *Order
	}{{"byte_order", &r.ByteOrder}, {"word_order", &r.WordOrder}} {
		switch *o.v {
		case "":
			*o.v = Big
		case Big:
		case Little:
			if r.Table.IsBit() {
				add("%s: a bit has no byte or word order", o.field)
			}
		default:
			add("%s %q: want big or little", o.field, *o.v)
		}
	}
	if r.WordOrder == Little && !r.Table.IsBit() && r.Type.Words() != 2 {
		add("word_order: only 32-bit types have two words")
	}
	return probs
}

// Profiles are profiles by name.
type Profiles map[string]*Profile

// ParseProfiles reads one or more profiles (YAML documents separated by ---) and
// validates each. source names the input in errors. The error lists every problem of
// every document (errors.Join of *ProfileError).
func ParseProfiles(data []byte, source string) ([]*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var out []*Profile
	var errs []error
	for i := 0; ; i++ {
		p := &Profile{}
		err := dec.Decode(p)
		if errors.Is(err, io.EOF) {
			break
		}
		src := source
		if i > 0 {
			src = fmt.Sprintf("%s (document %d)", source, i+1)
		}
		if err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				// The document was read as far as it could be: report its other
				// problems too.
				probs := te.Errors
				p.Source = src
				var pe *ProfileError
				if errors.As(p.Validate(), &pe) {
					probs = append(probs, pe.Problems...)
				}
				errs = append(errs, &ProfileError{Source: src, Profile: p.Name, Problems: probs})
				continue
			}
			// A syntax error ends the stream: the decoder cannot resynchronise.
			errs = append(errs, &ProfileError{Source: src, Problems: []string{err.Error()}})
			break
		}
		p.Source = src
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 && len(errs) == 0 {
		errs = append(errs, &ProfileError{Source: source, Problems: []string{"no profile in file"}})
	}
	return out, errors.Join(errs...)
}

//go:embed profiles/*.yaml
var builtinFS embed.FS

var builtin = sync.OnceValue(func() Profiles {
	ps, err := loadFS(builtinFS, "profiles", "<builtin>/")
	if err != nil {
		panic("modbus: invalid built-in profile: " + err.Error())
	}
	return ps
})

// BuiltinProfiles returns the profiles shipped with the driver (barrier-generic,
// barrier-register, io-module-8di, ultrasonic-spot, magnetic-spot, ...). The map is
// the caller's; the profiles are shared and must not be modified.
func BuiltinProfiles() Profiles {
	out := Profiles{}
	for k, v := range builtin() {
		out[k] = v
	}
	return out
}

// LoadProfiles reads every *.yaml and *.yml file in dir (not its subdirectories).
// The error lists every problem of every file.
func LoadProfiles(dir string) (Profiles, error) {
	return loadFS(os.DirFS(dir), ".", dir+string(filepath.Separator))
}

func loadFS(fsys fs.FS, dir, prefix string) (Profiles, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("modbus: profiles: %w", err)
	}
	out := Profiles{}
	var errs []error
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, pathJoin(dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("modbus: profiles: %w", err))
			continue
		}
		ps, err := ParseProfiles(data, prefix+e.Name())
		if err != nil {
			errs = append(errs, err)
		}
		for _, p := range ps {
			if prev, dup := out[p.Name]; dup {
				errs = append(errs, &ProfileError{Source: p.Source, Profile: p.Name,
					Problems: []string{"name already used in " + prev.Source}})
				continue
			}
			out[p.Name] = p
		}
	}
	return out, errors.Join(errs...)
}

func pathJoin(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// Names returns the profile names, sorted.
func (ps Profiles) Names() []string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
