package camera

import (
	"encoding/hex"
	"hash/fnv"
	"strings"
	"time"
)

// Read is one plate read as a camera pushed it, normalized across vendors.
type Read struct {
	// Device is the id of the camera in the facility config.
	Device string `json:"device"`
	// Vendor is the push format: ProfileHikvision, ProfileAxis or ProfileJSON.
	Vendor string `json:"vendor"`
	// EventID identifies the read at the vendor; retried pushes repeat it.
	EventID string `json:"event_id"`
	// Plate is RawPlate normalized by plate.Normalize (A–Z, 0–9).
	Plate string `json:"plate"`
	// RawPlate is the plate text exactly as the camera sent it.
	RawPlate string `json:"raw_plate"`
	// Confidence is the camera's confidence in the read, from 0 to 1.
	Confidence float64 `json:"confidence"`
	// Direction is DirectionEntry, DirectionExit or "" when the camera did not say.
	Direction string `json:"direction,omitempty"`
	// Country is the plate's country as the camera names it (an ISO 3166 code, or a
	// vendor's numeric index on some Hikvision firmware).
	Country string `json:"country,omitempty"`
	// Region is the plate's region or state, when the camera reports one.
	Region string `json:"region,omitempty"`
	// PlateType and VehicleType are the vendor's classification, passed through.
	PlateType   string `json:"plate_type,omitempty"`
	VehicleType string `json:"vehicle_type,omitempty"`
	// At is when the camera says it saw the plate (its own clock); the time of
	// arrival when the camera sent none.
	At time.Time `json:"at"`
	// Received is when the push arrived at the edge.
	Received time.Time `json:"received"`
	// Images are the stored images of the read, relative to Config.ImageDir, as
	// served under /camera/images/.
	Images []string `json:"images,omitempty"`
}

// Directions of a Read.
const (
	DirectionEntry = "entry"
	DirectionExit  = "exit"
)

// Profiles: the push format a camera device speaks (edge.Device.Profile).
const (
	ProfileHikvision = "hikvision"
	ProfileAxis      = "axis"
	ProfileJSON      = "json"
)

// push is what a parser makes of one request body.
type push struct {
	read Read
	// isRead is false for pushes that carry no plate read: heartbeats, other alarm
	// types, Axis "lost" events, reads without a plate. They still prove the camera
	// is alive.
	isRead bool
	// why says why a push is not a read, for the response and the log.
	why string
	// towards is the vendor's direction, folded: +1 towards the camera (Hikvision
	// forward/approach, Axis in), -1 away from it, 0 unknown. Generic JSON sets
	// read.Direction itself and leaves towards 0.
	towards int
	// camera is the device named in the body (generic JSON); "" if none.
	camera string
	// images are the image payloads in push order, not yet validated.
	images [][]byte
	// badImages counts image payloads the parser already knew to be broken (bad
	// base64).
	badImages int
	// unterminated is a multipart body that ended without its closing boundary: its
	// read still counts, the framing is counted malformed.
	unterminated bool
}

// malformedError is a body that cannot be read. Its text is safe to show the sender.
type malformedError struct{ detail string }

func (e *malformedError) Error() string { return e.detail }

func malformed(detail string) error { return &malformedError{detail: detail} }

// safeName makes s usable as one file-name component: characters outside
// [A-Za-z0-9._-] become '_', and a name that had to change (or is long, or starts
// with a dot) gets a hash of the original, so that distinct ids stay distinct.
func safeName(s string) string {
	ok := s != "" && len(s) <= 64 && s[0] != '.'
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			b[i] = '_'
			ok = false
		}
	}
	if ok {
		return s
	}
	if len(b) > 48 {
		b = b[:48]
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	name := strings.TrimLeft(string(b), ".")
	return name + "~" + hex.EncodeToString(h.Sum(nil))
}

// hashID derives a stable event id from the parts of a read that identify it, for
// cameras whose push carries no id of its own.
func hashID(parts ...string) string {
	h := fnv.New128a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "h" + hex.EncodeToString(h.Sum(nil))
}

// fold maps a vendor's direction word to +1 (towards the camera), -1 (away) or 0.
func fold(dir string) int {
	switch strings.ToLower(strings.TrimSpace(dir)) {
	case "forward", "approach", "approaching", "in", "towards", "entry", "enter":
		return 1
	case "reverse", "backward", "leave", "leaving", "away", "out", "exit":
		return -1
	}
	return 0
}

// clamp01 keeps a confidence within 0..1.
func clamp01(v float64) float64 {
	switch {
	case v < 0:
		return 0
	case v > 1:
		return 1
	}
	return v
}
