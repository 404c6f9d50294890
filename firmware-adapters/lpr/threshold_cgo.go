//go:build gocv

package lpr

/*
#cgo CFLAGS: -O3

// lpr_threshold sets dst[i] to 255 where src[i] - mean[i] is at most -idelta
// (inv: dark ink) or more than -idelta (light ink), else to 0: the comparison
// of OpenCV's adaptiveThreshold (THRESH_BINARY_INV, THRESH_BINARY), made
// against a mean computed once for all the thresholds that share it.
static void lpr_threshold(unsigned char *dst, const unsigned char *src, const unsigned char *mean, long n, int idelta, int inv) {
	if (inv) {
		for (long i = 0; i < n; i++) {
			dst[i] = (int)src[i] - (int)mean[i] <= -idelta ? 255 : 0;
		}
	} else {
		for (long i = 0; i < n; i++) {
			dst[i] = (int)src[i] - (int)mean[i] > -idelta ? 255 : 0;
		}
	}
}
*/
import "C"

// threshold sets dst to the ink of src against its local mean (see
// lpr_threshold), all three of one size.
func threshold(dst, src, mean []byte, idelta int, inv bool) {
	n := len(dst)
	if n == 0 {
		return
	}
	// The C code trusts the lengths: a short slice panics here instead.
	_, _ = src[n-1], mean[n-1]
	v := 0
	if inv {
		v = 1
	}
	C.lpr_threshold((*C.uchar)(&dst[0]), (*C.uchar)(&src[0]), (*C.uchar)(&mean[0]), C.long(n), C.int(idelta), C.int(v))
}
