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

// lpr_conv3x3: dst (h×w×co) is the ReLU of the 3×3 convolution of src
// (h×w×ci, zero beyond its edges) with wt ([ky][kx][ci][co]) plus b. The
// innermost loop runs over the output channels, whose weights are
// contiguous: the compiler makes it vector instructions.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
__attribute__((target_clones("avx2", "default")))
#endif
static void lpr_conv3x3(float *dst, const float *src, int h, int w, int ci, int co, const float *wt, const float *b) {
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			float *acc = dst + ((size_t)y * w + x) * co;
			for (int o = 0; o < co; o++) {
				acc[o] = b[o];
			}
			for (int ky = -1; ky <= 1; ky++) {
				if (y + ky < 0 || y + ky >= h) {
					continue;
				}
				for (int kx = -1; kx <= 1; kx++) {
					if (x + kx < 0 || x + kx >= w) {
						continue;
					}
					const float *in = src + ((size_t)(y + ky) * w + x + kx) * ci;
					const float *k = wt + (size_t)((ky + 1) * 3 + kx + 1) * ci * co;
					for (int c = 0; c < ci; c++) {
						float v = in[c];
						if (v == 0) {
							continue;
						}
						const float *row = k + (size_t)c * co;
						for (int o = 0; o < co; o++) {
							acc[o] += row[o] * v;
						}
					}
				}
			}
			for (int o = 0; o < co; o++) {
				acc[o] = acc[o] < 0 ? 0 : acc[o];
			}
		}
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

// conv3x3 sets dst (h×w×co) to the ReLU of the 3×3 convolution of src
// (h×w×ci, zero beyond its edges) with wt ([ky][kx][ci][co]) plus b: one
// layer of a convNet.
func conv3x3(dst, src []float32, h, w, ci, co int, wt, b []float32) {
	if h <= 0 || w <= 0 || ci <= 0 || co <= 0 {
		return
	}
	// The C code trusts the lengths: check them here, where a short slice
	// panics instead of reading past its end.
	_ = dst[h*w*co-1]
	_ = src[h*w*ci-1]
	_ = wt[9*ci*co-1]
	_ = b[co-1]
	C.lpr_conv3x3((*C.float)(&dst[0]), (*C.float)(&src[0]), C.int(h), C.int(w), C.int(ci), C.int(co), (*C.float)(&wt[0]), (*C.float)(&b[0]))
}
