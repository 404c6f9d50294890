//go:build !gocv

package lpr

// matvec sets dst[j] to b[j] plus row j of w (len(dst)×len(x), row-major)
// times x, clipped at 0 when relu is set: one layer of a network.
func matvec(dst, w, b, x []float32, relu bool) { matvecWith(dot, dst, w, b, x, relu) }

// conv3x3 sets dst (h×w×co) to the ReLU of the 3×3 convolution of src
// (h×w×ci, zero beyond its edges) with wt ([ky][kx][ci][co]) plus b: one
// layer of a convNet.
func conv3x3(dst, src []float32, h, w, ci, co int, wt, b []float32) {
	if h <= 0 || w <= 0 || ci <= 0 || co <= 0 {
		return
	}
	conv3x3Go(dst, src, h, w, ci, co, wt, b)
}
