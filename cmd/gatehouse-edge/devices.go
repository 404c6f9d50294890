package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatehouse-parking/gatehouse/edge"
	"github.com/gatehouse-parking/gatehouse/edge/inmem"
	"github.com/gatehouse-parking/gatehouse/edge/natsbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/camera"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/modbus"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/mqtt"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/serial"
	"github.com/gatehouse-parking/gatehouse/firmware-adapters/terminal"
	"github.com/gofiber/fiber/v2"
)

// lateSink forwards device events to the garage, which is built after the drivers
// because it needs their barriers. Drivers run only once it is set.
type lateSink struct{ g atomic.Pointer[edge.Garage] }

func (s *lateSink) Deliver(ev edge.DeviceEvent) {
	if g := s.g.Load(); g != nil {
		g.Deliver(ev)
	}
}

// devices is every driver of the facility, built from its devices' protocols.
type devices struct {
	drivers  []edge.Driver
	barriers map[string]edge.Barrier
	inmem    map[string]*inmem.Barrier
	cameras  *camera.Receiver
	plates   plateReader // lpr cameras; nil if none
	// terminals are the kiosks' card terminals by lane id.
	terminals map[string]edge.CardTerminal
	// simulated: the facility has in-memory devices, driven through /v1/sim.
	simulated bool
}

type deviceOptions struct {
	data, mqttBroker, profiles string
	travel                     time.Duration
	// bus is the edge's own NATS server, with an MQTT listener when the facility has
	// MQTT devices and no broker is given (see startBus); main owns it.
	bus *natsbus.Bus
}

func buildDevices(f *edge.Facility, sink edge.Sink, opt deviceOptions, log *slog.Logger) (*devices, error) {
	d := &devices{barriers: map[string]edge.Barrier{}, inmem: map[string]*inmem.Barrier{}, terminals: map[string]edge.CardTerminal{}}
	byProto := f.DevicesByProtocol()
	spots := f.SpotOfSensor()
	var errs []error
	for proto := range byProto {
		switch proto {
		case "inmem", "modbus_tcp", "modbus_rtu", "serial", "mqtt", "http_push", "lpr", terminal.Protocol:
		default:
			errs = append(errs, fmt.Errorf("protocol %q is not supported (devices: %s)", proto, byProto[proto][0].ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if ld := byProto["lpr"]; len(ld) > 0 {
		// First, so that every other driver's loop events reach it through the tap.
		pr, err := newPlateReader(f, ld, sink, filepath.Join(opt.data, "images"), log.With("adapter", "lpr"))
		if err != nil {
			return nil, err
		}
		d.plates = pr
		d.add(pr, nil)
		sink = loopTap{next: sink, reader: pr}
	}
	d.simulated = len(byProto["inmem"]) > 0
	byID := map[string]*terminal.Terminal{}
	for _, dev := range byProto[terminal.Protocol] {
		t, err := terminal.New(dev)
		if err != nil {
			return nil, err
		}
		byID[dev.ID] = t
		d.add(t, nil)
	}
	for _, l := range f.Lanes {
		if t := byID[l.CardTerminal]; t != nil {
			d.terminals[l.ID] = t
		} else if l.CardTerminal != "" {
			return nil, fmt.Errorf("lane %s: card terminal %s: protocol must be %s", l.ID, l.CardTerminal, terminal.Protocol)
		}
	}
	for _, dev := range byProto["inmem"] {
		if dev.Kind == edge.KindBarrier {
			b := &inmem.Barrier{ID: dev.ID, Travel: opt.travel, Sink: sink}
			d.inmem[dev.ID], d.barriers[dev.ID] = b, b
		}
	}
	if mb := slices.Concat(byProto["modbus_tcp"], byProto["modbus_rtu"]); len(mb) > 0 {
		drv, err := modbus.New(modbus.Config{Devices: mb, Spots: spots, Sink: sink, Logger: log.With("adapter", "modbus"), ProfileDir: opt.profiles})
		if err != nil {
			return nil, err
		}
		d.add(drv, drv.Barriers())
	}
	if sd := byProto["serial"]; len(sd) > 0 {
		drv, err := serial.New(serial.Config{Devices: sd, Sink: sink, Logger: log.With("adapter", "serial")})
		if err != nil {
			return nil, err
		}
		d.add(drv, drv.Barriers())
	}
	if md := byProto["mqtt"]; len(md) > 0 {
		broker := opt.mqttBroker
		if broker == "" {
			// No broker given: the edge's own NATS server listens for MQTT, so a garage
			// needs no separate broker.
			if opt.bus == nil || opt.bus.MQTTAddr() == "" {
				return nil, errors.New("embedded MQTT listener: not started")
			}
			broker = "tcp://" + opt.bus.MQTTAddr()
			log.Info("embedded MQTT listener", "addr", opt.bus.MQTTAddr())
		}
		drv, err := mqtt.New(mqtt.Config{Devices: md, Spots: spots, Sink: sink, Logger: log.With("adapter", "mqtt"),
			BrokerURL: broker, ClientID: "gatehouse-" + f.ID + "-sensors"})
		if err != nil {
			d.close()
			return nil, err
		}
		d.add(drv, nil)
	}
	if cd := byProto["http_push"]; len(cd) > 0 || d.plates != nil {
		// The plate reader stores its images beside the cameras': this receiver
		// serves them under /camera/images/.
		rcv, err := camera.New(camera.Config{Devices: cd, Sink: sink, Logger: log.With("adapter", "camera"), ImageDir: filepath.Join(opt.data, "images")})
		if err != nil {
			d.close()
			return nil, err
		}
		d.cameras = rcv
		d.add(rcv, nil)
	}
	return d, nil
}

func (d *devices) add(drv edge.Driver, bars map[string]edge.Barrier) {
	d.drivers = append(d.drivers, drv)
	for id, b := range bars {
		d.barriers[id] = b
	}
}

// mount adds the camera push endpoints to the API app.
func (d *devices) mount(app *fiber.App) {
	if d.cameras != nil {
		d.cameras.Mount(app.Group("/camera"))
	}
}

// plateReads returns the plate reader's recent reads, oldest first; none
// without lpr cameras.
func (d *devices) plateReads() []edge.ReaderRead {
	if d.plates == nil {
		return nil
	}
	return d.plates.Reads()
}

// status reports every driven device's health.
func (d *devices) status() []edge.DeviceStatus {
	var out []edge.DeviceStatus
	for _, drv := range d.drivers {
		out = append(out, drv.Status()...)
	}
	return out
}

// run runs every driver until ctx is done.
func (d *devices) run(ctx context.Context) error {
	errc := make(chan error, len(d.drivers))
	for _, drv := range d.drivers {
		go func() { errc <- drv.Run(ctx) }()
	}
	var first error
	for range d.drivers {
		if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}

func (d *devices) close() {
	if d.cameras != nil {
		d.cameras.Close()
	}
	if d.plates != nil {
		d.plates.Close()
	}
}

// simulator adds POST /v1/sim/lanes/:id/vehicle, which drives one vehicle through a
// lane of in-memory devices (see docs/edge-api.md): the demo and the end-to-end tests
// script cars with it.
func simulator(g *edge.Garage, pass time.Duration) func(r fiber.Router) {
	return func(r fiber.Router) {
		r.Post("/lanes/:id/vehicle", func(c *fiber.Ctx) error {
			var v inmem.Vehicle
			dec := json.NewDecoder(bytes.NewReader(c.Body()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil {
				return edge.Errorf(edge.EINVALID, "body: want {plate, ticket, card, pay}: %v", err)
			}
			ctx, cancel := context.WithTimeout(c.UserContext(), time.Minute)
			defer cancel()
			out, err := inmem.Drive(ctx, g, c.Params("id"), v, pass)
			if err != nil {
				return err
			}
			return c.JSON(out)
		})
	}
}
