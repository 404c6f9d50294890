package tariff

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes as text such as "15m"
// or "1h30m". It implements encoding.TextMarshaler and
// encoding.TextUnmarshaler, which both encoding/json and YAML decoders honour,
// so rate files can say `increment: 15m` without this package importing a
// YAML library.
type Duration time.Duration

// String returns d in the compact form used in rate files, such as "15m",
// "1h30m" or "24h"; sub-second durations fall back to time.Duration's form.
func (d Duration) String() string {
	x := time.Duration(d)
	if x == 0 {
		return "0s"
	}
	if x%time.Second != 0 {
		return x.String()
	}
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
		x = -x
	}
	h, m, s := x/time.Hour, x%time.Hour/time.Minute, x%time.Minute/time.Second
	if h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "m")
	}
	if s > 0 {
		b.WriteString(strconv.FormatInt(int64(s), 10) + "s")
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts anything
// time.ParseDuration accepts; an empty string means zero.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use units h, m and s, for example \"15m\" or \"24h\"", s)
	}
	*d = Duration(v)
	return nil
}

// Clock is a wall-clock time of day in minutes after midnight, written as
// "HH:MM" (00:00 to 23:59). It is interpreted in the rate's Location.
type Clock int

// minutesPerDay bounds a valid Clock.
const minutesPerDay = 24 * 60

// valid reports whether c names a minute of the day.
func (c Clock) valid() bool { return c >= 0 && c < minutesPerDay }

// String returns c as "HH:MM", or a diagnostic form if c is out of range.
func (c Clock) String() string {
	if !c.valid() {
		return fmt.Sprintf("Clock(%d)", int(c))
	}
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// MarshalText implements encoding.TextMarshaler.
func (c Clock) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("clock %d minutes is outside 00:00-23:59", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts "H:MM" and
// "HH:MM" from 00:00 to 23:59.
func (c *Clock) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	hs, ms, ok := strings.Cut(s, ":")
	if ok && len(hs) >= 1 && len(hs) <= 2 && len(ms) == 2 {
		h, herr := strconv.Atoi(hs)
		m, merr := strconv.Atoi(ms)
		if herr == nil && merr == nil && h >= 0 && h < 24 && m >= 0 && m < 60 && hs[0] != '+' && ms[0] != '+' {
			*c = Clock(h*60 + m)
			return nil
		}
	}
	return fmt.Errorf("invalid time of day %q: want HH:MM from 00:00 to 23:59", s)
}
