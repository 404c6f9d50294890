package camera

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// axisEvent is an Axis License Plate Verifier push event. Field names follow the
// LPV event push (protocol 1.6 of the application); encoding/json matches them
// case-insensitively, which absorbs the spellings of older releases.
type axisEvent struct {
	Datetime         string     `json:"datetime"`
	CaptureTimestamp flexString `json:"capture_timestamp"`
	PlateText        string     `json:"plateText"`
	PlateUTF8        string     `json:"plateUTF8"`
	PlateUnicode     string     `json:"plateUnicode"`
	PlateConfidence  flexString `json:"plateConfidence"`
	PlateCountry     string     `json:"plateCountry"`
	PlateRegion      string     `json:"plateRegion"`
	CarState         string     `json:"carState"`
	CarMoveDirection string     `json:"carMoveDirection"`
	CarID            flexString `json:"carID"`
	EventID          flexString `json:"eventID"`
	GUID             flexString `json:"GUID"`
	VehicleType      string     `json:"vehicleType"`
	CameraInfo       struct {
		SerialNumber string `json:"SerialNumber"`
	} `json:"camera_info"`
	// ImageArray inlines images as base64 when the push is JSON alone.
	ImageArray []struct {
		ImageType   string `json:"ImageType"`
		BinaryImage string `json:"BinaryImage"`
	} `json:"ImageArray"`
}

// flexString is a JSON string or number, kept as its text: Axis firmware sends
// carID and plateConfidence as either.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(strings.TrimSpace(s))
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
	}
	return nil
}

// parseAxis reads an Axis LPV push: multipart with a JSON part and image parts, or
// the JSON alone. Times without a zone are taken in loc.
func parseAxis(contentType string, body []byte, loc *time.Location) (*push, error) {
	mt, params := mediaType(contentType)
	var doc []byte
	var images [][]byte
	unterminated := false
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		parts, truncated, err := splitMultipart(params, body)
		if err != nil {
			return nil, err
		}
		unterminated = truncated
		for _, p := range parts {
			d := trimDoc(p.data)
			switch {
			case doc == nil && len(d) > 0 && d[0] == '{':
				doc = d
			case isImagePart(p):
				images = append(images, p.data)
			}
		}
		if doc == nil {
			return nil, malformed("no JSON part in the multipart body")
		}
	case mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/plain":
		doc = trimDoc(body)
	default:
		return nil, malformed("an Axis push is multipart/form-data or application/json, not " + mt)
	}

	var e axisEvent
	if err := json.Unmarshal(doc, &e); err != nil {
		return nil, malformed("the event JSON does not parse: " + err.Error())
	}
	p := &push{images: images, unterminated: unterminated}
	for _, im := range e.ImageArray {
		b, err := decodeBase64(im.BinaryImage)
		if err != nil {
			p.badImages++
			continue
		}
		p.images = append(p.images, b)
	}
	at, err := parseAxisTime(e.Datetime, string(e.CaptureTimestamp), loc)
	if err != nil {
		return nil, err
	}
	p.read.At = at
	raw := firstNonEmpty(e.PlateUTF8, e.PlateText, e.PlateUnicode)
	p.read.RawPlate = raw
	p.read.Country = strings.TrimSpace(e.PlateCountry)
	p.read.Region = strings.TrimSpace(e.PlateRegion)
	p.read.VehicleType = strings.TrimSpace(e.VehicleType)
	p.towards = fold(e.CarMoveDirection)
	if c := string(e.PlateConfidence); c != "" {
		v, err := strconv.ParseFloat(c, 64)
		if err != nil || v != v || v < 0 || v > 100 {
			return nil, malformed("plateConfidence must be a number from 0 to 1 (or a percentage)")
		}
		if v > 1 { // some releases send a percentage
			v /= 100
		}
		p.read.Confidence = v
	}
	state := strings.ToLower(strings.TrimSpace(e.CarState))
	switch {
	case e.EventID != "":
		p.read.EventID = string(e.EventID)
	case e.GUID != "":
		p.read.EventID = string(e.GUID)
	case e.CarID != "":
		// carID names the vehicle for as long as it is in view; with the state and
		// the time it names one event of it.
		p.read.EventID = string(e.CarID) + "-" + state + "-" + digits(firstNonEmpty(e.Datetime, string(e.CaptureTimestamp)))
	default:
		p.read.EventID = hashID(e.CameraInfo.SerialNumber, e.Datetime, string(e.CaptureTimestamp), state, raw)
	}
	switch state {
	case "new", "update", "updated", "":
	case "lost":
		p.why = "carState lost: the vehicle left the view"
		return p, nil
	default:
		p.why = "carState " + strconv.Quote(truncate(state, 20)) + " carries no plate read"
		return p, nil
	}
	if plateless(raw) {
		p.why = "the camera read no plate"
		return p, nil
	}
	p.isRead = true
	return p, nil
}

// plateless says whether a raw plate text holds no plate.
func plateless(raw string) bool {
	n := strings.Trim(raw, " -/")
	return n == "" || strings.EqualFold(n, "unknown")
}

// parseAxisTime reads an LPV datetime, "20060102 150405mmm" with an optional zone
// (+hhmm or Z), or RFC 3339; failing that capture_timestamp, milliseconds since the
// epoch. Neither present is zero: the time of arrival.
func parseAxisTime(dt, capture string, loc *time.Location) (time.Time, error) {
	dt = strings.TrimSpace(dt)
	if dt != "" {
		if t, err := time.Parse(time.RFC3339Nano, dt); err == nil {
			return t, nil
		}
		if t, ok := parseLPVTime(dt, loc); ok {
			return t, nil
		}
		return time.Time{}, malformed("datetime is not YYYYMMDD HHMMSSmmm: " + strconv.Quote(truncate(dt, 40)))
	}
	if capture = strings.TrimSpace(capture); capture != "" {
		ms, err := strconv.ParseInt(capture, 10, 64)
		if err != nil || ms <= 0 || ms > 1e14 {
			return time.Time{}, malformed("capture_timestamp is not milliseconds since 1970")
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Time{}, nil
}

// parseLPVTime parses "20060102 150405mmm[+hhmm|-hhmm|Z]": the milliseconds follow
// the seconds without a separator, which time.Parse cannot express.
func parseLPVTime(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 15 {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("20060102 150405", s[:15], loc)
	if err != nil {
		return time.Time{}, false
	}
	rest := s[15:]
	ms := 0
	for i := 0; i < 3 && len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9'; i++ {
		ms = ms*10 + int(rest[0]-'0')
		rest = rest[1:]
		if i < 2 && (len(rest) == 0 || rest[0] < '0' || rest[0] > '9') {
			return time.Time{}, false // one or two digits: not milliseconds
		}
	}
	t = t.Add(time.Duration(ms) * time.Millisecond)
	switch rest = strings.TrimSpace(rest); {
	case rest == "":
		return t, true
	case rest == "Z":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
	}
	z, err := time.Parse("-0700", rest)
	if err != nil {
		return time.Time{}, false
	}
	_, off := z.Zone()
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.FixedZone("", off)), true
}

// decodeBase64 decodes standard base64 with or without padding, tolerating line
// breaks; a data: URL prefix is dropped.
func decodeBase64(s string) ([]byte, error) {
	if i := strings.Index(s, ";base64,"); i >= 0 && strings.HasPrefix(s, "data:") {
		s = s[i+len(";base64,"):]
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' {
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// digits returns the digits of s: a time written any way, as an id part.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// firstNonEmpty returns the first of ss that is not blank, trimmed.
func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
