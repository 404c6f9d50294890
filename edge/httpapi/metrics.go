package httpapi

import (
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's own instruments; the garage's are read at scrape time.
type metrics struct {
	badRequests prometheus.Counter
	duration    *prometheus.HistogramVec
}

// newMetrics registers the API's instruments and the garage's collectors on reg. A
// collector already registered (a second app on the same registry) is reused for the
// API's instruments and skipped, with a warning, for the garage's.
func newMetrics(reg prometheus.Registerer, g Garage, log *slog.Logger) *metrics {
	m := &metrics{
		badRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_http_bad_requests_total",
			Help: "Requests answered with a 4xx problem.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"method", "route", "code"}),
	}
	if err := reg.Register(m.badRequests); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if c, ok := are.ExistingCollector.(prometheus.Counter); ok {
				m.badRequests = c
			}
		} else {
			log.Warn("metric not registered", "err", err)
		}
	}
	if err := reg.Register(m.duration); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if c, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
				m.duration = c
			}
		} else {
			log.Warn("metric not registered", "err", err)
		}
	}

	st := g.Stats()
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	cs := []prometheus.Collector{
		counter("gatehouse_events_written_total", "Events submitted to the outbox.", &st.EventsWritten),
		counter("gatehouse_store_batches_total", "Batches submitted to the store.", &st.Batches),
		counter("gatehouse_device_events_total", "Device events delivered to the garage.", &st.DeviceEvents),
		counter("gatehouse_unknown_device_events_total", "Device events from devices the facility does not know.", &st.UnknownDevices),
		counter("gatehouse_decisions_total", "Lane decisions.", &st.Decisions),
		counter("gatehouse_denials_total", "Lane decisions that refused a vehicle.", &st.Denials),
		counter("gatehouse_passages_total", "Vehicles that went through a lane.", &st.Passages),
		counter("gatehouse_alerts_total", "Alerts raised.", &st.Alerts),
		counter("gatehouse_barrier_errors_total", "Barrier commands that failed.", &st.BarrierErrors),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_event_seq", Help: "Seq of the garage's newest event."},
			func() float64 { return float64(g.Seq()) }),
	}
	f := g.Facility()
	for _, z := range f.Zones {
		id := z.ID
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_zone_occupied", Help: "Vehicles counted in the zone.",
				ConstLabels: prometheus.Labels{"zone": id}}, func() float64 { return zoneValue(g, id, false) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_zone_capacity", Help: "Spaces in the zone.",
				ConstLabels: prometheus.Labels{"zone": id}}, func() float64 { return zoneValue(g, id, true) }))
	}
	for _, l := range f.Lanes {
		id := l.ID
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_lane_degraded", Help: "1 while the lane is out of normal service.",
			ConstLabels: prometheus.Labels{"lane": id}}, func() float64 { return laneDegraded(g, id) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			log.Warn("garage metric not registered", "err", err)
		}
	}
	return m
}

func zoneValue(g Garage, id string, capacity bool) float64 {
	for _, z := range g.Occupancy() {
		if z.ID == id {
			if capacity {
				return float64(z.Capacity)
			}
			return float64(z.Occupied)
		}
	}
	return 0
}

func laneDegraded(g Garage, id string) float64 {
	for _, l := range g.Lanes() {
		if l.ID == id && l.Status != "ok" {
			return 1
		}
	}
	return 0
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.duration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}
