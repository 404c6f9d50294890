//go:build !gocv

package lpr

// matvec sets dst[j] to b[j] plus row j of w (len(dst)×len(x), row-major)
// times x, clipped at 0 when relu is set: one layer of a network.
func matvec(dst, w, b, x []float32, relu bool) { matvecWith(dot, dst, w, b, x, relu) }
