package synth

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// maxWOFFSize bounds the unpacked font, so that a broken or hostile file
// cannot make the decoder allocate without limit.
const maxWOFFSize = 32 << 20

// WOFFToSFNT unpacks a WOFF 1.0 font (the web font format npm's font packages
// ship) into the TrueType/OpenType file it wraps: the same tables, each
// inflated when it was compressed, behind an sfnt header.
func WOFFToSFNT(b []byte) ([]byte, error) {
	if len(b) < 44 || string(b[:4]) != "wOFF" {
		return nil, errors.New("woff: not a WOFF 1.0 file")
	}
	flavor := binary.BigEndian.Uint32(b[4:])
	n := int(binary.BigEndian.Uint16(b[12:]))
	if n == 0 || 44+20*n > len(b) {
		return nil, fmt.Errorf("woff: %d tables do not fit in %d bytes", n, len(b))
	}
	type table struct {
		tag, sum uint32
		data     []byte
	}
	tables := make([]table, n)
	total := 0
	for i := range tables {
		e := b[44+20*i:]
		off, comp, orig := binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
		if uint64(off)+uint64(comp) > uint64(len(b)) || orig > maxWOFFSize || comp > orig {
			return nil, fmt.Errorf("woff: table %d out of bounds", i)
		}
		if total += int(orig); total > maxWOFFSize {
			return nil, fmt.Errorf("woff: tables larger than %d bytes", maxWOFFSize)
		}
		data := b[off : off+comp]
		if comp < orig {
			z, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, fmt.Errorf("woff: table %d: %v", i, err)
			}
			data, err = io.ReadAll(io.LimitReader(z, int64(orig)+1))
			if err != nil {
				return nil, fmt.Errorf("woff: table %d: %v", i, err)
			}
			if len(data) != int(orig) {
				return nil, fmt.Errorf("woff: table %d inflates to %d bytes, not %d", i, len(data), orig)
			}
		}
		tables[i] = table{tag: binary.BigEndian.Uint32(e), sum: binary.BigEndian.Uint32(e[16:]), data: data}
	}
	// The sfnt directory lists tables by tag, with the binary-search hints.
	sort.Slice(tables, func(i, j int) bool { return tables[i].tag < tables[j].tag })
	pow, log2 := 1, 0
	for pow*2 <= n {
		pow, log2 = pow*2, log2+1
	}
	out := binary.BigEndian.AppendUint32(nil, flavor)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	out = binary.BigEndian.AppendUint16(out, uint16(pow*16))
	out = binary.BigEndian.AppendUint16(out, uint16(log2))
	out = binary.BigEndian.AppendUint16(out, uint16(n*16-pow*16))
	off := 12 + 16*n
	for _, t := range tables {
		out = binary.BigEndian.AppendUint32(out, t.tag)
		out = binary.BigEndian.AppendUint32(out, t.sum)
		out = binary.BigEndian.AppendUint32(out, uint32(off))
		out = binary.BigEndian.AppendUint32(out, uint32(len(t.data)))
		off += (len(t.data) + 3) &^ 3
	}
	for _, t := range tables {
		out = append(out, t.data...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
	}
	return out, nil
}
