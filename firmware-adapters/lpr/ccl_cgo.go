//go:build gocv

package lpr

// The reader labels twelve binarizations of every picture and needs only
// each component's box and area. OpenCV's connectedComponentsWithStats
// writes a label for every pixel and then sums the statistics pixel by pixel
// (about half the reader's time went there); labelling runs of ink instead
// does work in proportion to the runs, and a C loop skips paper a word at a
// time.

/*
#cgo CFLAGS: -O3
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int32_t *start, *end, *row, *parent, *comp; // per run
	long cap;
	int32_t *box;  // per component: x0, y0, x1, y1, area
	int64_t *key;  // per component: its first 2×2 block in raster order
	long ccap;
} lpr_lab;

static void lpr_lab_free(lpr_lab *l) {
	free(l->start); free(l->end); free(l->row); free(l->parent); free(l->comp);
	free(l->box); free(l->key);
	free(l);
}

static int lpr_grow(void **p, long n, long size) {
	void *q = realloc(*p, (size_t)n * size);
	if (q == NULL) {
		return -1;
	}
	*p = q;
	return 0;
}

// lpr_cap is the first power of two from 4096 at least need.
static long lpr_cap(long have, long need) {
	long c = have ? have : 4096;
	while (c < need) {
		c *= 2;
	}
	return c;
}

// lpr_lab_reserve makes room for need runs.
static int lpr_lab_reserve(lpr_lab *l, long need) {
	if (need <= l->cap) {
		return 0;
	}
	long c = lpr_cap(l->cap, need);
	if (lpr_grow((void **)&l->start, c, 4) || lpr_grow((void **)&l->end, c, 4) ||
		lpr_grow((void **)&l->row, c, 4) || lpr_grow((void **)&l->parent, c, 4) ||
		lpr_grow((void **)&l->comp, c, 4)) {
		return -1;
	}
	l->cap = c;
	return 0;
}

// lpr_lab_reserve_comps makes room for need components (far fewer than runs:
// a component has one run per row it spans at least).
static int lpr_lab_reserve_comps(lpr_lab *l, long need) {
	if (need <= l->ccap) {
		return 0;
	}
	long c = lpr_cap(l->ccap, need);
	if (lpr_grow((void **)&l->box, c, 20) || lpr_grow((void **)&l->key, c, 8)) {
		return -1;
	}
	l->ccap = c;
	return 0;
}

static inline int32_t lpr_find(int32_t *p, int32_t i) {
	while (p[i] != i) {
		p[i] = p[p[i]]; // path halving
		i = p[i];
	}
	return i;
}

static inline void lpr_union(int32_t *p, int32_t a, int32_t b) {
	a = lpr_find(p, a);
	b = lpr_find(p, b);
	if (a < b) {
		p[b] = a;
	} else if (b < a) {
		p[a] = b;
	}
}

// lpr_zero has the high bit set in each zero byte of v (and perhaps in bytes
// above one, never below), so its lowest set bit marks v's first zero byte:
// the byte at the lowest address on a little-endian machine (x86-64, arm64,
// armv7 as Linux runs them).
static inline uint64_t lpr_zero(uint64_t v) {
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

// lpr_label finds the 8-connected components of the w×h image pix (rows
// stride bytes apart, ink non-zero) and leaves in l->box and l->key the ones
// at least minH rows tall, in the order their first runs were found. It
// returns how many, or -1 when memory ran out.
static long lpr_label(lpr_lab *l, const unsigned char *pix, int w, int h, long stride, int minH) {
	long n = 0;
	long prevFrom = 0, prevTo = 0;
	for (int y = 0; y < h; y++) {
		if (lpr_lab_reserve(l, n + (w + 1) / 2)) {
			return -1;
		}
		const unsigned char *line = pix + (long)y * stride;
		long from = n;
		int x = 0;
		while (x < w) {
			uint64_t v;
			while (x + 8 <= w && (memcpy(&v, line + x, 8), v == 0)) {
				x += 8;
			}
			while (x < w && line[x] == 0) {
				x++;
			}
			if (x >= w) {
				break;
			}
			int s = x;
			while (x + 8 <= w) {
				memcpy(&v, line + x, 8);
				uint64_t z = lpr_zero(v);
				if (z != 0) {
					x += __builtin_ctzll(z) / 8;
					break;
				}
				x += 8;
			}
			while (x < w && line[x] != 0) {
				x++;
			}
			l->start[n] = s;
			l->end[n] = x;
			l->row[n] = y;
			l->parent[n] = (int32_t)n;
			n++;
		}
		// Join this row's runs to the previous row's they touch, diagonally
		// too: [s, e) and [ps, pe) touch when ps <= e and pe >= s.
		long j = prevFrom;
		for (long i = from; i < n; i++) {
			int32_t s = l->start[i], e = l->end[i];
			while (j < prevTo && l->end[j] < s) {
				j++;
			}
			for (long k = j; k < prevTo && l->start[k] <= e; k++) {
				lpr_union(l->parent, (int32_t)i, (int32_t)k);
			}
		}
		prevFrom = from;
		prevTo = n;
	}
	long roots = 0;
	for (long i = 0; i < n; i++) {
		l->comp[i] = -1;
		roots += l->parent[i] == i;
	}
	if (lpr_lab_reserve_comps(l, roots)) {
		return -1;
	}
	long nc = 0;
	for (long i = 0; i < n; i++) {
		int32_t r = lpr_find(l->parent, (int32_t)i);
		int32_t s = l->start[i], e = l->end[i], y = l->row[i];
		int64_t key = (int64_t)(y / 2) * w + s / 2;
		int32_t *b;
		if (l->comp[r] < 0) {
			l->comp[r] = (int32_t)nc;
			b = l->box + 5 * nc;
			b[0] = s; b[1] = y; b[2] = e; b[3] = y + 1; b[4] = e - s;
			l->key[nc] = key;
			nc++;
			continue;
		}
		long c = l->comp[r];
		b = l->box + 5 * c;
		if (s < b[0]) b[0] = s;
		if (e > b[2]) b[2] = e;
		b[3] = y + 1; // runs come in row order
		b[4] += e - s;
		if (key < l->key[c]) l->key[c] = key;
	}
	// Keep the tall ones, as x, y, w, h, area.
	long k = 0;
	for (long c = 0; c < nc; c++) {
		int32_t *b = l->box + 5 * c;
		if (b[3] - b[1] < minH) {
			continue;
		}
		int32_t *o = l->box + 5 * k;
		int32_t x0 = b[0], y0 = b[1], x1 = b[2], y1 = b[3], a = b[4];
		o[0] = x0; o[1] = y0; o[2] = x1 - x0; o[3] = y1 - y0; o[4] = a;
		l->key[k] = l->key[c];
		k++;
	}
	return k;
}
*/
import "C"

import (
	"slices"
	"unsafe"
)

// blob is one 8-connected component of a binary image: its bounding box
// (x, y, w, h) and its pixel count, as OpenCV's connectedComponentsWithStats
// reports them.
type blob struct {
	x, y, w, h, area int
}

// labeller finds the 8-connected components of binary images by runs: each
// row's runs of ink are joined to the runs they touch in the row above
// (union-find over runs), and no label image is written. Its buffers (C
// memory) are kept between calls until free; a labeller is not safe for
// concurrent use.
type labeller struct {
	c     *C.lpr_lab
	order []int
}

// label returns the components of the w×h image pix (rows stride bytes
// apart, ink non-zero) at least minH rows tall, in the order OpenCV numbers
// them (its default algorithm scans blocks of 2×2 pixels in raster order and
// numbers a component by the first block that holds it), so that a caller
// sees the same list as from connectedComponentsWithStats. It returns nil
// when pix is shorter than the image or memory runs out.
func (l *labeller) label(pix []byte, w, h, stride, minH int) []blob {
	// Run indices are int32: at most one run per two pixels of an image
	// of at most 2³¹ pixels (images are at most MaxImageSide a side).
	if w <= 0 || h <= 0 || stride < w || w > 1<<30 || h > 1<<30 || stride > 1<<30 || int64(w)*int64(h) > 1<<31 ||
		len(pix) < (h-1)*stride+w {
		return nil
	}
	if l.c == nil {
		l.c = (*C.lpr_lab)(C.calloc(1, C.size_t(unsafe.Sizeof(C.lpr_lab{}))))
		if l.c == nil {
			return nil
		}
	}
	n := int(C.lpr_label(l.c, (*C.uchar)(&pix[0]), C.int(w), C.int(h), C.long(stride), C.int(minH)))
	if n <= 0 {
		return nil
	}
	box := unsafe.Slice((*int32)(unsafe.Pointer(l.c.box)), 5*n)
	key := unsafe.Slice((*int64)(unsafe.Pointer(l.c.key)), n)
	l.order = l.order[:0]
	for i := range n {
		l.order = append(l.order, i)
	}
	slices.SortFunc(l.order, func(a, b int) int {
		switch {
		case key[a] < key[b]:
			return -1
		case key[a] > key[b]:
			return 1
		}
		return 0
	})
	out := make([]blob, n)
	for i, c := range l.order {
		b := box[5*c : 5*c+5]
		out[i] = blob{int(b[0]), int(b[1]), int(b[2]), int(b[3]), int(b[4])}
	}
	return out
}

// free releases l's buffers; l may be used again.
func (l *labeller) free() {
	if l.c != nil {
		C.lpr_lab_free(l.c)
		l.c = nil
	}
}
