package modbus

import (
	"errors"
	"math"
	"testing"
)

// FuzzDecode feeds arbitrary response data through the decoding the driver applies
// to a read: the byte count check, then every resource type at every position. It
// must never panic, and whatever decodes must encode back to the same value.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x00, 0x96}, uint16(1), uint8(1), uint8(0), uint8(0))
	f.Add([]byte{0x41, 0x48, 0x00, 0x00}, uint16(2), uint8(5), uint8(1), uint8(0))
	f.Add([]byte{0x05}, uint16(3), uint8(0), uint8(0), uint8(0x10))
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(2), uint8(3), uint8(3), uint8(0))
	f.Add([]byte{}, uint16(0), uint8(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, quantity uint16, typ, orders, bit uint8) {
		types := []ValueType{Bool, Uint16, Int16, Uint32, Int32, Float32}
		r := Resource{Name: "v", Table: InputRegister, Type: types[int(typ)%len(types)], ByteOrder: Big, WordOrder: Big}
		if orders&1 != 0 {
			r.ByteOrder = Little
		}
		if orders&2 != 0 {
			r.WordOrder = Little
		}
		if r.Type == Bool && bit&0x10 != 0 {
			b := int(bit & 0x0f)
			r.Bit = &b
		}
		if orders&4 != 0 && r.Type != Bool {
			s := 0.1
			r.Scale = &s
		}

		if bits, err := Bits(data, int(quantity)); err == nil {
			if len(bits) != int(quantity) {
				t.Fatalf("Bits(%d) = %d bits", quantity, len(bits))
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("Bits error %v is not ErrMalformed", err)
		}
		regs, err := Registers(data, int(quantity))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Registers error %v is not ErrMalformed", err)
			}
			return
		}
		for off := range regs {
			v, err := r.Decode(regs[off:])
			if err != nil {
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("Decode(%04x) = %v", regs[off:], v)
			}
			enc, err := r.Encode(v, regs[off:])
			if err != nil {
				t.Fatalf("Encode(Decode(%04x) = %v) = %v", regs[off:], v, err)
			}
			back, err := r.Decode(enc)
			if err != nil || (back != v && math.Abs(back-v) > math.Abs(v)*1e-6+1e-6) {
				t.Fatalf("Decode(Encode(%v)) = %v, %v (%+v)", v, back, err, r)
			}
		}
	})
}

// FuzzProfile parses arbitrary profile YAML. It must never panic, and a profile that
// passes validation must be usable: every resource decodes a register block.
func FuzzProfile(f *testing.F) {
	for _, p := range BuiltinProfiles() {
		// the built-in profiles are seeds too (testdata/fuzz/FuzzProfile has more)
		f.Add([]byte("name: " + p.Name + "\nkind: " + string(p.Kind) + "\nresources: [{name: a, table: coil, address: 1}]\n"))
	}
	f.Add([]byte("name: x\nkind: spot_sensor\nresources: [{name: d, table: input_register, address: 0, type: float32, word_order: little}]\noccupied: {resource: d, below: 1.5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseProfiles(data, "fuzz.yaml")
		if err != nil && len(ps) > 0 && err.Error() == "" {
			t.Fatal("empty error text")
		}
		for _, p := range ps {
			if err := p.Validate(); err != nil {
				t.Fatalf("a parsed profile fails Validate again: %v", err)
			}
			regs := []uint16{0x4148, 0, 0xffff}
			for i := range p.Resources {
				r := &p.Resources[i]
				if r.Address < 0 || r.Address+r.Words()-1 > math.MaxUint16 {
					t.Fatalf("resource %q address %d passed validation", r.Name, r.Address)
				}
				_, _ = r.Decode(regs)
			}
			if p.Occupied != nil {
				if _, ok := p.Resource(p.Occupied.Resource); !ok {
					t.Fatalf("occupied resource %q missing", p.Occupied.Resource)
				}
				p.Occupied.Occupied(1)
			}
			if p.Kind == KindBarrier && p.Barrier == nil {
				t.Fatal("barrier profile without barrier map passed validation")
			}
		}
	})
}
