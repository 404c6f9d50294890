package serial

import (
	"errors"
	"io"
	"os"
	"syscall"

	tarm "github.com/tarm/serial"
)

// openPort opens a real serial port. github.com/tarm/serial sets it up (speed, 8N1,
// raw), but its file is switched to blocking mode, and on a blocking file Go's Close
// waits for a Read in progress, which on a silent line never ends. So the port is
// opened a second time, non-blocking, and that descriptor is used: Go's poller then
// lets Close interrupt a Read. The termios settings belong to the device, not to the
// descriptor, so they hold for both.
func openPort(path string, baud int) (io.ReadWriteCloser, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	p, err := tarm.OpenPort(&tarm.Config{Name: path, Baud: baud})
	if err != nil {
		f.Close()
		return nil, err
	}
	p.Flush() // drop what piled up while nobody listened
	p.Close()
	// The path may name another device by now (a symlink replaced in between).
	fi, err1 := f.Stat()
	pi, err2 := os.Stat(path)
	if err := errors.Join(err1, err2); err != nil || !os.SameFile(fi, pi) {
		f.Close()
		return nil, errors.Join(errors.New("serial port changed while it was opened"), err)
	}
	return f, nil
}
