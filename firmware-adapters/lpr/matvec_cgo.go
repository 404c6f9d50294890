//go:build gocv

package lpr

// The classifier's layers are most of the time the recognizer spends outside
// OpenCV. Go does not use vector instructions for a dot product; the C
// compiler does (SSE on any x86-64, AVX2 where the processor has it, NEON on
// arm64), which makes a layer several times faster. The build that has
// OpenCV has a C compiler anyway.

/*
#cgo CFLAGS: -O3
#include <stdlib.h>

// AVX2 where the processor has it, chosen when the program loads (an
// ifunc: GCC with glibc only).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void lpr_matvec(float *dst, const float *w, const float *b, const float *x, int rows, int cols, int relu) {
	for (int j = 0; j < rows; j++) {
		const float *r = w + (size_t)j * cols;
		// Sixteen independent running sums: the compiler keeps them in
		// vector registers, and their adds overlap.
		float acc[16] = {0};
		int i = 0;
		for (; i + 16 <= cols; i += 16) {
			for (int k = 0; k < 16; k++) {
				acc[k] += r[i + k] * x[i + k];
			}
		}
		float s = 0;
		for (; i < cols; i++) {
			s += r[i] * x[i];
		}
		for (int k = 0; k < 8; k++) {
			acc[k] += acc[k + 8];
		}
		for (int k = 0; k < 4; k++) {
			acc[k] += acc[k + 4];
		}
		s += (acc[0] + acc[1]) + (acc[2] + acc[3]);
		s += b[j];
		dst[j] = relu && s < 0 ? 0 : s;
	}
}
*/
import "C"

// matvec sets dst[j] to b[j] plus row j of w (len(dst)×len(x), row-major)
// times x, clipped at 0 when relu is set: one layer of a network.
func matvec(dst, w, b, x []float32, relu bool) {
	rows, cols := len(dst), len(x)
	if rows == 0 || cols == 0 { // no row or column to point C at
		matvecWith(dot, dst, w, b, x, relu)
		return
	}
	// The C code trusts the lengths: check them here, where a short slice
	// panics instead of reading past its end.
	_ = w[rows*cols-1]
	_ = b[rows-1]
	r := 0
	if relu {
		r = 1
	}
	C.lpr_matvec((*C.float)(&dst[0]), (*C.float)(&w[0]), (*C.float)(&b[0]), (*C.float)(&x[0]), C.int(rows), C.int(cols), C.int(r))
}
