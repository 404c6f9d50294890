package modbus

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// ErrMalformed marks a response that does not fit its request: wrong length, wrong
// byte count, a value that cannot be decoded.
var ErrMalformed = errors.New("modbus: malformed response")

// Registers decodes the data of a read-registers response (the bytes after the byte
// count) that must hold exactly quantity registers.
func Registers(data []byte, quantity int) ([]uint16, error) {
	if quantity < 1 || len(data) != 2*quantity {
		return nil, fmt.Errorf("%w: %d bytes for %d registers", ErrMalformed, len(data), quantity)
	}
	regs := make([]uint16, quantity)
	for i := range regs {
		regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
	}
	return regs, nil
}

// Bits decodes the data of a read-coils or read-discrete-inputs response (the bytes
// after the byte count) that must hold exactly quantity bits, least significant bit
// first. The padding bits of the last byte are ignored.
func Bits(data []byte, quantity int) ([]bool, error) {
	if quantity < 1 || len(data) != (quantity+7)/8 {
		return nil, fmt.Errorf("%w: %d bytes for %d bits", ErrMalformed, len(data), quantity)
	}
	out := make([]bool, quantity)
	for i := range out {
		out[i] = data[i/8]>>(i%8)&1 == 1
	}
	return out, nil
}

// Decode turns the registers of a resource (regs[0] is the register at its address)
// into its value: bools as 0 or 1, numbers multiplied by the scale.
func (r *Resource) Decode(regs []uint16) (float64, error) {
	if len(regs) < r.Words() {
		return 0, fmt.Errorf("%w: resource %q needs %d registers, have %d", ErrMalformed, r.Name, r.Words(), len(regs))
	}
	w0 := r.swap(regs[0])
	if r.Type == Bool {
		if r.Bit != nil {
			return float64(w0 >> uint(*r.Bit&15) & 1), nil
		}
		return b2f(w0 != 0), nil
	}
	var v float64
	switch r.Type {
	case Uint16:
		v = float64(w0)
	case Int16:
		v = float64(int16(w0))
	case Uint32, Int32, Float32:
		w1 := r.swap(regs[1])
		hi, lo := w0, w1
		if r.WordOrder == Little {
			hi, lo = w1, w0
		}
		u := uint32(hi)<<16 | uint32(lo)
		switch r.Type {
		case Uint32:
			v = float64(u)
		case Int32:
			v = float64(int32(u))
		default:
			v = float64(math.Float32frombits(u))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("%w: resource %q is %v", ErrMalformed, r.Name, v)
			}
		}
	default:
		return 0, fmt.Errorf("modbus: resource %q has unknown type %q", r.Name, r.Type)
	}
	return v * r.ScaleFactor(), nil
}

// Encode is the inverse of Decode: the registers that hold value v. Bits of a
// register not covered by the resource's Bit are taken from cur (the register's
// current value; may be nil). Integer values are rounded; a value out of the type's
// range is an error.
func (r *Resource) Encode(v float64, cur []uint16) ([]uint16, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("modbus: resource %q: cannot encode %v", r.Name, v)
	}
	if r.Type == Bool {
		var w uint16
		if len(cur) > 0 {
			w = r.swap(cur[0])
		}
		switch {
		case r.Bit != nil && v != 0:
			w |= 1 << uint(*r.Bit&15)
		case r.Bit != nil:
			w &^= 1 << uint(*r.Bit&15)
		case v != 0:
			w = 1
		default:
			w = 0
		}
		return []uint16{r.swap(w)}, nil
	}
	raw := v / r.ScaleFactor()
	var u uint32
	inRange := func(lo, hi float64) bool { return raw >= lo && raw <= hi }
	switch r.Type {
	case Uint16:
		raw = math.Round(raw)
		if !inRange(0, math.MaxUint16) {
			return nil, r.rangeErr(v)
		}
		return []uint16{r.swap(uint16(raw))}, nil
	case Int16:
		raw = math.Round(raw)
		if !inRange(math.MinInt16, math.MaxInt16) {
			return nil, r.rangeErr(v)
		}
		return []uint16{r.swap(uint16(int16(raw)))}, nil
	case Uint32:
		raw = math.Round(raw)
		if !inRange(0, math.MaxUint32) {
			return nil, r.rangeErr(v)
		}
		u = uint32(raw)
	case Int32:
		raw = math.Round(raw)
		if !inRange(math.MinInt32, math.MaxInt32) {
			return nil, r.rangeErr(v)
		}
		u = uint32(int32(raw))
	case Float32:
		if !inRange(-math.MaxFloat32, math.MaxFloat32) {
			return nil, r.rangeErr(v)
		}
		u = math.Float32bits(float32(raw))
	default:
		return nil, fmt.Errorf("modbus: resource %q has unknown type %q", r.Name, r.Type)
	}
	hi, lo := uint16(u>>16), uint16(u)
	if r.WordOrder == Little {
		hi, lo = lo, hi
	}
	return []uint16{r.swap(hi), r.swap(lo)}, nil
}

func (r *Resource) rangeErr(v float64) error {
	return fmt.Errorf("modbus: resource %q: %v is out of range for %s", r.Name, v, r.Type)
}

// swap puts a register's bytes in big-endian order (and back): the Modbus wire order
// is big-endian, so only a little byte order needs a swap.
func (r *Resource) swap(w uint16) uint16 {
	if r.ByteOrder == Little {
		return bits.ReverseBytes16(w)
	}
	return w
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
