package camera

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// genericEvent is the body of a generic JSON push (see docs/cameras.md).
type genericEvent struct {
	Camera     string   `json:"camera"`
	Plate      *string  `json:"plate"`
	Confidence *float64 `json:"confidence"`
	Direction  string   `json:"direction"`
	EventID    string   `json:"event_id"`
	Time       string   `json:"time"`
	Country    string   `json:"country"`
	// Image is one JPEG, base64 (standard alphabet, padding optional).
	Image string `json:"image"`
}

// parseGeneric reads a generic JSON push. It is stricter than the vendor formats,
// whose quirks are not ours to fix: the plate and a confidence from 0 to 1 are
// required, the direction is entry, exit or absent, the time is RFC 3339.
func parseGeneric(contentType string, body []byte) (*push, error) {
	mt, _ := mediaType(contentType)
	if mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "text/plain" {
		return nil, malformed("a generic push is application/json, not " + mt)
	}
	var e genericEvent
	if err := json.Unmarshal(trimDoc(body), &e); err != nil {
		return nil, malformed("the JSON body does not parse: " + err.Error())
	}
	if e.Plate == nil {
		return nil, malformed(`"plate" is required`)
	}
	if e.Confidence == nil || math.IsNaN(*e.Confidence) || *e.Confidence < 0 || *e.Confidence > 1 {
		return nil, malformed(`"confidence" is required, from 0 to 1`)
	}
	p := &push{camera: strings.TrimSpace(e.Camera)}
	switch d := strings.ToLower(strings.TrimSpace(e.Direction)); d {
	case DirectionEntry, DirectionExit, "":
		p.read.Direction = d
	default:
		return nil, malformed(`"direction" is "entry", "exit" or absent`)
	}
	if s := strings.TrimSpace(e.Time); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, malformed(`"time" is not an RFC 3339 time`)
		}
		p.read.At = t
	}
	raw := strings.TrimSpace(*e.Plate)
	p.read.RawPlate = raw
	p.read.Confidence = *e.Confidence
	p.read.Country = strings.TrimSpace(e.Country)
	p.read.EventID = strings.TrimSpace(e.EventID)
	if p.read.EventID == "" && !p.read.At.IsZero() {
		// Without an id, a retry of the same read still repeats camera, plate and time.
		p.read.EventID = hashID(p.camera, raw, e.Time)
	}
	if e.Image != "" {
		b, err := decodeBase64(e.Image)
		if err != nil {
			p.badImages++
		} else {
			p.images = append(p.images, b)
		}
	}
	if plateless(raw) {
		p.why = "the body carries no plate"
		return p, nil
	}
	p.isRead = true
	return p, nil
}
