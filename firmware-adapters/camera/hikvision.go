package camera

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// hikAlert is the part of a Hikvision ISAPI EventNotificationAlert that a read needs.
// Tags carry no namespace, so the document matches with the
// http://www.hikvision.com/ver20/XMLSchema or http://www.isapi.org/ver20/XMLSchema
// namespace, or none.
type hikAlert struct {
	XMLName    xml.Name `xml:"EventNotificationAlert"`
	IPAddress  string   `xml:"ipAddress"`
	ChannelID  string   `xml:"channelID"`
	DateTime   string   `xml:"dateTime"`
	EventType  string   `xml:"eventType"`
	EventState string   `xml:"eventState"`
	UUID       string   `xml:"UUID"`
	ANPR       *struct {
		LicensePlate    string `xml:"licensePlate"`
		ConfidenceLevel string `xml:"confidenceLevel"`
		Direction       string `xml:"direction"`
		Country         string `xml:"country"`
		PlateType       string `xml:"plateType"`
		VehicleType     string `xml:"vehicleType"`
	} `xml:"ANPR"`
}

// hikNoPlate are the texts Hikvision firmware sends as licensePlate when it saw a
// vehicle but read no plate.
var hikNoPlate = map[string]bool{"": true, "unknown": true, "无车牌": true, "no plate": true, "noplate": true}

// parseHikvision reads a Hikvision ISAPI push: multipart/form-data with an
// EventNotificationAlert XML part (whatever its name) and JPEG parts, or the XML
// document alone. Times without a zone are taken in loc.
func parseHikvision(contentType string, body []byte, loc *time.Location) (*push, error) {
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
			case doc == nil && len(d) > 0 && d[0] == '<' && bytes.Contains(d, []byte("EventNotificationAlert")):
				doc = d
			case isImagePart(p):
				images = append(images, p.data)
			}
		}
		if doc == nil {
			return nil, malformed("no EventNotificationAlert XML part in the multipart body")
		}
	case mt == "" || strings.HasSuffix(mt, "/xml") || mt == "text/plain":
		doc = trimDoc(body)
	default:
		return nil, malformed("a Hikvision push is multipart/form-data or XML, not " + mt)
	}

	var a hikAlert
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.CharsetReader = charsetReader
	if err := dec.Decode(&a); err != nil {
		return nil, malformed("the EventNotificationAlert XML does not parse: " + err.Error())
	}
	p := &push{images: images, unterminated: unterminated}
	at, err := parseHikTime(a.DateTime, loc)
	if err != nil {
		return nil, err
	}
	p.read.At = at
	if a.ANPR == nil {
		// Heartbeats and other alarm types (videoloss, VMD) keep the camera's
		// contact fresh but read nothing.
		p.why = "event " + strings.TrimSpace(a.EventType) + " carries no plate read"
		return p, nil
	}
	raw := strings.TrimSpace(a.ANPR.LicensePlate)
	p.read.RawPlate = raw
	p.read.Country = strings.TrimSpace(a.ANPR.Country)
	p.read.PlateType = strings.TrimSpace(a.ANPR.PlateType)
	p.read.VehicleType = strings.TrimSpace(a.ANPR.VehicleType)
	p.towards = fold(a.ANPR.Direction)
	if c := strings.TrimSpace(a.ANPR.ConfidenceLevel); c != "" {
		v, err := strconv.ParseFloat(c, 64)
		if err != nil || v != v || v < 0 || v > 100 {
			return nil, malformed("confidenceLevel must be a number from 0 to 100")
		}
		p.read.Confidence = v / 100
	}
	p.read.EventID = strings.TrimSpace(a.UUID)
	if p.read.EventID == "" {
		// Older firmware sends no UUID: the camera, the time and the plate identify
		// a read well enough to catch a retried push.
		p.read.EventID = hashID(a.IPAddress, a.ChannelID, a.DateTime, raw)
	}
	if hikNoPlate[strings.ToLower(raw)] {
		p.why = "the camera read no plate"
		return p, nil
	}
	p.isRead = true
	return p, nil
}

// charsetReader lets the XML decoder read documents declared in Latin-1 (older
// European firmware) besides UTF-8; other charsets are refused.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "windows-1252", "cp1252":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c) // Latin-1 is the first 256 code points
		}
		return strings.NewReader(string(r)), nil
	}
	return nil, fmt.Errorf("charset %q is not supported (UTF-8 or ISO-8859-1)", truncate(charset, 20))
}

// parseHikTime reads an ISAPI dateTime: RFC 3339 with or without fractional seconds,
// or without a zone (taken in loc). An empty time is zero: the time of arrival.
func parseHikTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, malformed("dateTime is not an ISO 8601 time: " + strconv.Quote(truncate(s, 40)))
}

// truncate shortens s for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
