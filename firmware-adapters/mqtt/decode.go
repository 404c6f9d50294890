package mqtt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Profiles: the payload formats a device may send.
const (
	// ProfileJSON is a sensor's own flat JSON: {"occupied": true, "battery": 3.6,
	// "ts": "2026-01-02T15:04:05Z"}.
	ProfileJSON = "json"
	// ProfileChirpstack is a ChirpStack v4 uplink event ("up") in its JSON encoding,
	// as published on application/<appId>/device/<devEui>/event/up.
	ProfileChirpstack = "chirpstack"
)

// profile says how one device's payloads are read.
type profile struct {
	name string
	// field is the path of the occupancy value in the JSON payload or, for
	// ChirpStack, in the codec's decoded object; dots separate nested objects.
	field []string
	// raw: read occupancy from bit bit of byte byteIdx of the ChirpStack FRMPayload
	// (data) when the object does not carry field.
	raw     bool
	byteIdx int
	bit     uint
	// devEUI, when set, must match the uplink's deviceInfo.devEui.
	devEUI string
}

// reading is what one message says.
type reading struct {
	occupied    bool
	hasOccupied bool
	// battery is in volts (JSON profile) or as the codec reports it; hasBattery
	// says it was present.
	battery    float64
	hasBattery bool
	// at is the sensor's (or network server's) own timestamp, zero if absent.
	at time.Time
	// Radio metadata of ChirpStack uplinks (best gateway).
	devEUI   string
	rssi     int
	snr      float64
	hasRadio bool
}

// Decoding errors; all of them count as malformed.
var (
	errNotObject    = errors.New("payload is not a JSON object")
	errNotUplink    = errors.New("not a ChirpStack uplink: no deviceInfo.devEui")
	errBadOccupancy = errors.New("occupancy is neither a boolean nor 0/1")
)

// decode reads a payload in the device's profile.
func (p *profile) decode(payload []byte) (reading, error) {
	if p.name == ProfileChirpstack {
		return decodeChirpstack(payload, p)
	}
	return decodeJSON(payload, p.field)
}

// decodeJSON reads the flat JSON profile. Fields other than the occupancy field,
// "battery" and "ts" are ignored; a message without the occupancy field is a
// heartbeat that only proves the sensor is alive.
func decodeJSON(payload []byte, field []string) (reading, error) {
	var r reading
	obj, err := object(payload)
	if err != nil {
		return r, err
	}
	if err := occupancy(obj, field, &r); err != nil {
		return r, err
	}
	if v, ok := obj["battery"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &r.battery); err != nil {
			return r, fmt.Errorf("battery: want a number: %s", clip(v))
		}
		r.hasBattery = true
	}
	if v, ok := obj["ts"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return r, fmt.Errorf("ts: want an RFC 3339 string: %s", clip(v))
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return r, fmt.Errorf("ts: %w", err)
		}
		r.at = t
	}
	return r, nil
}

// chirpstackUplink holds the fields of a ChirpStack v4 uplink event that the driver
// uses (see https://www.chirpstack.io/docs/chirpstack/integrations/events.html); the
// others (deduplicationId, devAddr, dr, fCnt, adr, confirmed, txInfo, ...) are
// ignored. In the Protobuf JSON mapping bytes are base64 and the EUI is hex.
type chirpstackUplink struct {
	Time       string `json:"time"`
	DeviceInfo *struct {
		DevEUI     string `json:"devEui"`
		DeviceName string `json:"deviceName"`
	} `json:"deviceInfo"`
	FPort  uint32          `json:"fPort"`
	Data   string          `json:"data"`
	Object json.RawMessage `json:"object"`
	RxInfo []struct {
		RSSI int     `json:"rssi"`
		SNR  float64 `json:"snr"`
	} `json:"rxInfo"`
}

// decodeChirpstack reads a ChirpStack v4 uplink. Occupancy comes from the codec's
// object (p.field), else, with p.raw, from a bit of data; an uplink with neither (a
// status frame on another fPort, say) is a heartbeat.
func decodeChirpstack(payload []byte, p *profile) (reading, error) {
	var r reading
	if _, err := object(payload); err != nil {
		return r, err
	}
	var up chirpstackUplink
	if err := json.Unmarshal(payload, &up); err != nil {
		return r, fmt.Errorf("chirpstack uplink: %w", err)
	}
	if up.DeviceInfo == nil || up.DeviceInfo.DevEUI == "" {
		return r, errNotUplink
	}
	r.devEUI = up.DeviceInfo.DevEUI
	if p.devEUI != "" && !strings.EqualFold(p.devEUI, r.devEUI) {
		return r, fmt.Errorf("uplink of devEui %q on the topic of %q", clipString(r.devEUI), p.devEUI)
	}
	if up.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, up.Time)
		if err != nil {
			return r, fmt.Errorf("time: %w", err)
		}
		r.at = t
	}
	for i, rx := range up.RxInfo {
		if i == 0 || rx.RSSI > r.rssi {
			r.rssi, r.snr, r.hasRadio = rx.RSSI, rx.SNR, true
		}
	}
	var data []byte
	if up.Data != "" {
		var err error
		if data, err = decodeBase64(up.Data); err != nil {
			return r, fmt.Errorf("data: %w", err)
		}
	}
	if len(up.Object) > 0 && !isNull(up.Object) {
		obj, err := object(up.Object)
		if err != nil {
			return r, fmt.Errorf("object: %w", err)
		}
		if err := occupancy(obj, p.field, &r); err != nil {
			return r, err
		}
		if v, ok := obj["battery"]; ok && !isNull(v) {
			if err := json.Unmarshal(v, &r.battery); err == nil {
				r.hasBattery = true
			}
		}
	}
	if !r.hasOccupied && p.raw {
		if p.byteIdx >= len(data) {
			return r, fmt.Errorf("data has %d bytes; occupancy is in byte %d", len(data), p.byteIdx)
		}
		r.occupied = data[p.byteIdx]&(1<<p.bit) != 0
		r.hasOccupied = true
	}
	return r, nil
}

// object parses a JSON object, keeping its members raw.
func object(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errNotObject
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("broken JSON: %w", err)
	}
	return obj, nil
}

// occupancy finds the value at path in obj and reads it as a boolean or 0/1. A
// missing value leaves r.hasOccupied false.
func occupancy(obj map[string]json.RawMessage, path []string, r *reading) error {
	v, ok := obj[path[0]]
	for _, name := range path[1:] {
		if !ok {
			break
		}
		inner, err := object(v)
		if err != nil {
			return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
		}
		v, ok = inner[name]
	}
	if !ok {
		return nil
	}
	occ, err := boolish(v)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(path, "."), err, clip(v))
	}
	r.occupied, r.hasOccupied = occ, true
	return nil
}

// boolish reads true/false or the numbers 0 and 1 (as many codecs report a
// carStatus).
func boolish(v json.RawMessage) (bool, error) {
	if isNull(v) {
		return false, errBadOccupancy
	}
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var n float64
	if err := json.Unmarshal(v, &n); err == nil {
		switch n {
		case 0:
			return false, nil
		case 1:
			return true, nil
		}
	}
	return false, errBadOccupancy
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// decodeBase64 accepts what the Protobuf JSON mapping accepts for bytes: standard or
// URL-safe alphabet, padded or not.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("bad base64 %q", clipString(s))
}

// clip shortens raw JSON for error messages and logs.
func clip(v json.RawMessage) string { return clipString(string(v)) }

func clipString(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
