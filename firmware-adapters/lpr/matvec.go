//go:build !gocv

package lpr

// matvec sets dst[j] to b[j] plus row j of w (len(dst)×len(x), row-major)
// times x, clipped at 0 when relu is set: one layer of a network.
func matvec(dst, w, b, x []float32, relu bool) {
	n := len(x)
	for j := range dst {
		s := dot(b[j], w[j*n:(j+1)*n], x)
		if relu {
			s = max(s, 0)
		}
		dst[j] = s
	}
}
