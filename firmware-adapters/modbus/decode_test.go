package modbus

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestRegistersAndBits(t *testing.T) {
	t.Run("registers", func(t *testing.T) {
		tests := []struct {
			data []byte
			n    int
			want []uint16
			ok   bool
		}{
			{[]byte{0x12, 0x34, 0xab, 0xcd}, 2, []uint16{0x1234, 0xabcd}, true},
			{[]byte{0x12, 0x34, 0xab}, 2, nil, false},
			{[]byte{0x12, 0x34}, 2, nil, false},
			{nil, 0, nil, false},
			{[]byte{0, 1, 0, 2, 0, 3}, 2, nil, false},
		}
		for _, tt := range tests {
			got, err := Registers(tt.data, tt.n)
			if tt.ok != (err == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("Registers(% x, %d) = %v, %v; want %v, ok %v", tt.data, tt.n, got, err, tt.want, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("Registers(% x, %d) error %v is not ErrMalformed", tt.data, tt.n, err)
			}
		}
	})
	t.Run("bits", func(t *testing.T) {
		tests := []struct {
			data []byte
			n    int
			want []bool
			ok   bool
		}{
			{[]byte{0b0000_0101}, 3, []bool{true, false, true}, true},
			{[]byte{0xff, 0x01}, 9, []bool{true, true, true, true, true, true, true, true, true}, true},
			{[]byte{0x80}, 8, []bool{false, false, false, false, false, false, false, true}, true},
			{[]byte{0xff, 0x01}, 8, nil, false},
			{[]byte{}, 1, nil, false},
			{nil, 0, nil, false},
		}
		for _, tt := range tests {
			got, err := Bits(tt.data, tt.n)
			if tt.ok != (err == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("Bits(% x, %d) = %v, %v; want %v, ok %v", tt.data, tt.n, got, err, tt.want, tt.ok)
			}
		}
	})
}

func TestDecode(t *testing.T) {
	f32 := math.Float32bits(-12.5) // 0xc1480000
	tests := []struct {
		name string
		r    Resource
		regs []uint16
		want float64
	}{
		{"uint16", Resource{Type: Uint16}, []uint16{0xfffe}, 65534},
		{"int16", Resource{Type: Int16}, []uint16{0xfffe}, -2},
		{"int16 little bytes", Resource{Type: Int16, ByteOrder: Little}, []uint16{0xfeff}, -2},
		{"uint16 scale", Resource{Type: Uint16, Scale: ptr(0.1)}, []uint16{1234}, 123.4},
		{"int16 negative scale", Resource{Type: Int16, Scale: ptr(0.5)}, []uint16{0xfffc}, -2},
		{"uint32 big/big", Resource{Type: Uint32}, []uint16{0x0001, 0x0002}, 65538},
		{"uint32 little words", Resource{Type: Uint32, WordOrder: Little}, []uint16{0x0002, 0x0001}, 65538},
		{"uint32 little bytes", Resource{Type: Uint32, ByteOrder: Little}, []uint16{0x0100, 0x0200}, 65538},
		{"uint32 little/little", Resource{Type: Uint32, ByteOrder: Little, WordOrder: Little}, []uint16{0x0200, 0x0100}, 65538},
		{"uint32 max", Resource{Type: Uint32}, []uint16{0xffff, 0xffff}, math.MaxUint32},
		{"int32", Resource{Type: Int32}, []uint16{0xffff, 0xfffe}, -2},
		{"int32 little words", Resource{Type: Int32, WordOrder: Little}, []uint16{0xfffe, 0xffff}, -2},
		{"int32 scale", Resource{Type: Int32, Scale: ptr(0.01)}, []uint16{0x0000, 0x3039}, 123.45},
		{"float32", Resource{Type: Float32}, []uint16{uint16(f32 >> 16), uint16(f32)}, -12.5},
		{"float32 little words", Resource{Type: Float32, WordOrder: Little}, []uint16{uint16(f32), uint16(f32 >> 16)}, -12.5},
		{"float32 little bytes", Resource{Type: Float32, ByteOrder: Little}, []uint16{0x48c1, 0x0000}, -12.5},
		{"float32 scale", Resource{Type: Float32, Scale: ptr(2.0)}, []uint16{uint16(f32 >> 16), uint16(f32)}, -25},
		{"bool register", Resource{Type: Bool}, []uint16{0x0100}, 1},
		{"bool register zero", Resource{Type: Bool}, []uint16{0}, 0},
		{"bit 0 set", Resource{Type: Bool, Bit: ptr(0)}, []uint16{0x8001}, 1},
		{"bit 15 set", Resource{Type: Bool, Bit: ptr(15)}, []uint16{0x8000}, 1},
		{"bit 3 clear", Resource{Type: Bool, Bit: ptr(3)}, []uint16{0xfff7}, 0},
		{"bit little bytes", Resource{Type: Bool, Bit: ptr(8), ByteOrder: Little}, []uint16{0x0001}, 1},
		{"extra registers ignored", Resource{Type: Uint16}, []uint16{7, 8, 9}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Name, r.Table = "v", HoldingRegister
			if r.check() != nil {
				t.Fatalf("test resource invalid: %v", r.check())
			}
			got, err := r.Decode(tt.regs)
			if err != nil || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("Decode(%04x) = %v, %v; want %v", tt.regs, got, err, tt.want)
			}
			// Encode is Decode's inverse.
			regs, err := r.Encode(tt.want, tt.regs)
			if err != nil {
				t.Fatalf("Encode(%v) = %v", tt.want, err)
			}
			back, err := r.Decode(regs)
			if err != nil || math.Abs(back-tt.want) > 1e-9 {
				t.Errorf("Decode(Encode(%v) = %04x) = %v, %v", tt.want, regs, back, err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	nan := math.Float32bits(float32(math.NaN()))
	tests := []struct {
		name string
		r    Resource
		regs []uint16
	}{
		{"short 32-bit", Resource{Type: Uint32}, []uint16{1}},
		{"empty", Resource{Type: Uint16}, nil},
		{"NaN", Resource{Type: Float32}, []uint16{uint16(nan >> 16), uint16(nan)}},
		{"Inf", Resource{Type: Float32}, []uint16{0x7f80, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Name, r.Table = "v", InputRegister
			r.check()
			if v, err := r.Decode(tt.regs); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%04x) = %v, %v; want ErrMalformed", tt.regs, v, err)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		r    Resource
		v    float64
		cur  []uint16
		want []uint16
		ok   bool
	}{
		{"uint16 rounds", Resource{Type: Uint16}, 41.6, nil, []uint16{42}, true},
		{"uint16 range", Resource{Type: Uint16}, 70000, nil, nil, false},
		{"uint16 negative", Resource{Type: Uint16}, -1, nil, nil, false},
		{"int16 range", Resource{Type: Int16}, -40000, nil, nil, false},
		{"uint32 range", Resource{Type: Uint32}, 1 << 33, nil, nil, false},
		{"int32", Resource{Type: Int32}, -1, nil, []uint16{0xffff, 0xffff}, true},
		{"scale", Resource{Type: Uint16, Scale: ptr(0.1)}, 12.3, nil, []uint16{123}, true},
		{"NaN", Resource{Type: Float32}, math.NaN(), nil, nil, false},
		{"bit keeps others", Resource{Type: Bool, Bit: ptr(0)}, 1, []uint16{0x8000}, []uint16{0x8001}, true},
		{"bit clears", Resource{Type: Bool, Bit: ptr(15)}, 0, []uint16{0x8001}, []uint16{0x0001}, true},
		{"bool register", Resource{Type: Bool}, 1, []uint16{0x00f0}, []uint16{1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Name, r.Table = "v", HoldingRegister
			r.check()
			got, err := r.Encode(tt.v, tt.cur)
			if tt.ok != (err == nil) || !slices.Equal(got, tt.want) {
				t.Errorf("Encode(%v, %04x) = %04x, %v; want %04x, ok %v", tt.v, tt.cur, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestRule(t *testing.T) {
	tests := []struct {
		name string
		r    Rule
		v    float64
		want bool
	}{
		{"below yes", Rule{Below: ptr(150.0)}, 149.9, true},
		{"below at threshold", Rule{Below: ptr(150.0)}, 150, false},
		{"above yes", Rule{Above: ptr(10.0)}, 10.5, true},
		{"above no", Rule{Above: ptr(10.0)}, 10, false},
		{"flag true set", Rule{Flag: ptr(true)}, 1, true},
		{"flag true clear", Rule{Flag: ptr(true)}, 0, false},
		{"flag false (normally closed) clear", Rule{Flag: ptr(false)}, 0, true},
		{"flag false set", Rule{Flag: ptr(false)}, 1, false},
		{"default nonzero", Rule{}, 3, true},
		{"default zero", Rule{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Occupied(tt.v); got != tt.want {
				t.Errorf("Occupied(%v) = %v; want %v", tt.v, got, tt.want)
			}
		})
	}
}
