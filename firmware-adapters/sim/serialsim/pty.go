package serialsim

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var baudRates = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
}

// openPTY makes a pseudo-terminal in raw mode at baud and returns its master, non-
// blocking so that Go's poller serves it (deadlines, Close interrupting a Read), and
// the path of its slave, which is what the edge opens.
func openPTY(baud int) (*os.File, string, error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(what string, err error) (*os.File, string, error) {
		unix.Close(fd)
		return nil, "", fmt.Errorf("pty: %s: %w", what, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		return fail("unlock", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		return fail("number", err)
	}
	slave := fmt.Sprintf("/dev/pts/%d", n)
	// Termios requests on a master apply to its slave: set what cfmakeraw does.
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fail("get termios", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD | baudRates[baud]
	t.Ispeed, t.Ospeed = baudRates[baud], baudRates[baud]
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fail("set termios", err)
	}
	// Open and close the slave once: from then on a read of the master fails with
	// EIO while no one has the slave open, which is how the simulator tells that the
	// edge is there (a slave never opened reads as silence instead).
	sfd, err := unix.Open(slave, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail("open "+slave, err)
	}
	unix.Close(sfd)
	return os.NewFile(uintptr(fd), "/dev/ptmx"), slave, nil
}
