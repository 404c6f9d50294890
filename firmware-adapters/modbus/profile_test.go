package modbus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinProfiles(t *testing.T) {
	ps := BuiltinProfiles()
	for _, name := range []string{"barrier-generic", "barrier-register", "io-module-8di", "ultrasonic-spot", "ultrasonic-spot-status", "magnetic-spot"} {
		t.Run(name, func(t *testing.T) {
			p, ok := ps[name]
			if !ok {
				t.Fatalf("BuiltinProfiles() has no %q; have %v", name, ps.Names())
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("Validate() = %v; want nil", err)
			}
			if p.Description == "" {
				t.Errorf("profile %q has no description", name)
			}
		})
	}

	t.Run("barrier-generic map", func(t *testing.T) {
		p := ps["barrier-generic"]
		cmd, _ := p.Resource(p.Barrier.Command)
		if cmd.Table != Coil || cmd.Address != 0 || p.Barrier.OpenValue() != 1 || p.Barrier.CloseValue() != 0 {
			t.Errorf("command = %+v open %d close %d; want coil 0, 1/0", cmd, p.Barrier.OpenValue(), p.Barrier.CloseValue())
		}
		for i, n := range []string{"arm_up", "arm_down", "fault"} {
			r, ok := p.Resource(n)
			if !ok || r.Table != DiscreteInput || r.Address != i || r.Type != Bool {
				t.Errorf("Resource(%q) = %+v, %v; want discrete input %d", n, r, ok, i)
			}
		}
	})
	t.Run("io-module-8di inputs", func(t *testing.T) {
		p := ps["io-module-8di"]
		if len(p.Resources) != 8 {
			t.Fatalf("%d resources; want 8", len(p.Resources))
		}
		for i, r := range p.Resources {
			if want := "di" + string(rune('0'+i)); r.Name != want || r.Address != i || r.Table != DiscreteInput {
				t.Errorf("resource %d = %+v; want %s at discrete input %d", i, r, want, i)
			}
		}
	})
	t.Run("ultrasonic-spot rule", func(t *testing.T) {
		p := ps["ultrasonic-spot"]
		if p.Occupied == nil || p.Occupied.Below == nil || *p.Occupied.Below != 150 {
			t.Fatalf("Occupied = %+v; want below 150", p.Occupied)
		}
		for _, c := range []struct {
			cm   float64
			want bool
		}{{50, true}, {149, true}, {150, false}, {300, false}} {
			if got := p.Occupied.Occupied(c.cm); got != c.want {
				t.Errorf("Occupied(%v) = %v; want %v", c.cm, got, c.want)
			}
		}
	})
	t.Run("copy", func(t *testing.T) {
		a := BuiltinProfiles()
		delete(a, "barrier-generic")
		if _, ok := BuiltinProfiles()["barrier-generic"]; !ok {
			t.Error("deleting from one BuiltinProfiles() map changed the next")
		}
	})
}

func TestParseProfilesProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"empty file", ``, []string{"no profile in file"}},
		{"nothing set", `description: x`, []string{"name: required", "kind: required", "resources: at least one"}},
		{"bad name and kind", "name: Bad Name\nkind: lamp\nresources: [{name: a, table: coil, address: 0}]",
			[]string{`name "Bad Name"`, `kind "lamp"`}},
		{"unknown field", "name: x\nkind: io_module\ncolour: red\nresources: [{name: a, table: coil, address: 0}]",
			[]string{"field colour not found"}},
		{"unknown field and other problems", "name: x\nkind: io_module\ncolour: red\nresources: [{name: a, table: disk, address: 0}]",
			[]string{"field colour not found", `table "disk"`}},
		{"resource problems", `
name: x
kind: io_module
resources:
  - {table: coil, address: -1}
  - {name: b, table: discrete_input, address: 1, type: uint16}
  - {name: c, table: holding_register, address: 65535, type: uint32}
  - {name: d, table: holding_register, address: 1, bit: 16, type: uint16}
  - {name: e, table: coil, address: 2, bit: 1}
  - {name: f, table: input_register, address: 3, type: double}
  - {name: g, table: input_register, address: 4, scale: 0}
  - {name: h, table: input_register, address: 5, byte_order: middle, word_order: little}
  - {name: b, table: coil, address: 9}
  - {name: i, table: discrete_input, address: 6, scale: 2}
`, []string{
			"resources[0]: name: required", "resources[0]: address -1",
			`resource "b": type uint16: a discrete_input holds one bit`,
			`resource "c": address 65535`,
			`resource "d": bit 16`, `resource "d": bit: the type of a bit must be bool`,
			`resource "e": bit: only for registers`,
			`resource "f": type "double"`,
			`resource "g": scale: must be a finite number other than 0`,
			`resource "h": byte_order "middle"`, `resource "h": word_order: only 32-bit types`,
			`resource "b": defined twice`,
			`resource "i": scale: a bool has no scale`,
		}},
		{"spot sensor without rule", "name: x\nkind: spot_sensor\nresources: [{name: d, table: input_register, address: 0}]",
			[]string{"occupied: required for a spot_sensor"}},
		{"rule problems", `
name: x
kind: spot_sensor
resources:
  - {name: d, table: input_register, address: 0}
  - {name: f, table: discrete_input, address: 0}
occupied: {resource: f, below: 3, above: 4}
fault: nope
`, []string{"occupied: give one of below, above and flag", `resource "f" is a bool: use flag`, `fault: no resource "nope"`}},
		{"rule resource missing", "name: x\nkind: loop\nresources: [{name: d, table: coil, address: 0}]\noccupied: {resource: e, flag: true}",
			[]string{`occupied.resource: no resource "e"`}},
		{"barrier without map", "name: x\nkind: barrier\nresources: [{name: d, table: coil, address: 0}]",
			[]string{"barrier: required for kind barrier"}},
		{"barrier map problems", `
name: x
kind: barrier
resources:
  - {name: cmd, table: discrete_input, address: 0}
  - {name: up, table: input_register, address: 0}
barrier: {command: cmd, open: 2, close: 2, up: up}
`, []string{`barrier.command: resource "cmd" is in table discrete_input`, "barrier: open and close must differ",
			`barrier.up: resource "up" must be a bool`, "barrier.down: required"}},
		{"coil command values", `
name: x
kind: barrier
resources:
  - {name: cmd, table: coil, address: 0}
  - {name: up, table: discrete_input, address: 0}
  - {name: down, table: discrete_input, address: 1}
barrier: {command: cmd, open: 5, up: up, down: down}
`, []string{"open and close of a coil command must be 0 or 1"}},
		{"register command without values", `
name: x
kind: barrier
resources:
  - {name: cmd, table: holding_register, address: 0, type: uint32}
  - {name: up, table: discrete_input, address: 0}
  - {name: down, table: discrete_input, address: 1}
barrier: {command: cmd, up: up, down: down}
`, []string{"must be one whole register", "open and close values are required"}},
		{"barrier map on a sensor", `
name: x
kind: loop
resources: [{name: c, table: coil, address: 0}, {name: u, table: coil, address: 1}]
barrier: {command: c, up: u, down: u}
`, []string{"barrier: only for kind barrier"}},
		{"syntax error", "name: [x\n", []string{"yaml:"}},
		{"type error", "name: x\nkind: io_module\nresources: [{name: a, table: coil, address: lots}]", []string{"cannot unmarshal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseProfiles([]byte(tt.yaml), "test.yaml")
			if err == nil {
				t.Fatalf("ParseProfiles() = nil error; want %q", tt.want)
			}
			var pe *ProfileError
			if !errors.As(err, &pe) {
				t.Errorf("ParseProfiles() error %T is no *ProfileError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseProfiles() = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseProfilesDefaults(t *testing.T) {
	ps, err := ParseProfiles([]byte(`
name: dev
kind: io_module
resources:
  - {name: a, table: coil, address: 0}
  - {name: b, table: holding_register, address: 1}
  - {name: c, table: holding_register, address: 2, bit: 3}
---
name: dev2
kind: loop
resources: [{name: x, table: discrete_input, address: 0}]
`), "multi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "dev" || ps[1].Name != "dev2" {
		t.Fatalf("ParseProfiles() = %d profiles; want dev and dev2", len(ps))
	}
	want := []ValueType{Bool, Uint16, Bool}
	for i, r := range ps[0].Resources {
		if r.Type != want[i] || r.ByteOrder != Big || r.WordOrder != Big || r.ScaleFactor() != 1 {
			t.Errorf("resource %s = %+v; want type %s, big orders, scale 1", r.Name, r, want[i])
		}
	}
	if ps[1].Source != "multi.yaml (document 2)" {
		t.Errorf("Source = %q; want the document named", ps[1].Source)
	}
}

func TestLoadProfiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "name: custom-loop\nkind: loop\nresources: [{name: in, table: discrete_input, address: 7}]\n")
	write("b.yml", "name: ultrasonic-spot\nkind: spot_sensor\nresources: [{name: distance, table: input_register, address: 3}]\noccupied: {resource: distance, below: 100}\n")
	write("notes.txt", "not a profile")
	ps, err := LoadProfiles(dir)
	if err != nil {
		t.Fatalf("LoadProfiles() = %v", err)
	}
	if got := strings.Join(ps.Names(), ","); got != "custom-loop,ultrasonic-spot" {
		t.Errorf("LoadProfiles() names = %s; want custom-loop,ultrasonic-spot", got)
	}

	t.Run("errors of every file", func(t *testing.T) {
		write("c.yaml", "name: custom-loop\nkind: loop\nresources: [{name: in, table: coil, address: 1}]\n")
		write("d.yaml", "name: broken\nkind: loop\n")
		_, err := LoadProfiles(dir)
		for _, w := range []string{"name already used", "d.yaml", "resources: at least one"} {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("LoadProfiles() = %v; want it to contain %q", err, w)
			}
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		if _, err := LoadProfiles(filepath.Join(dir, "nope")); err == nil {
			t.Error("LoadProfiles(missing) = nil error")
		}
	})
}
