package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The HTTP endpoints of this issue: probes, metrics and a garage's status. The REST
// API (cloud/httpapi, Fiber, /v1 with auth) replaces the status route when it lands.

// FacilityStatusResponse is the body of GET /v1/facilities/{id}/status.
type FacilityStatusResponse struct {
	ID              string    `json:"id"`
	Name            string    `json:"name,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	LastContact     time.Time `json:"last_contact,omitzero"`
	LastEventAt     time.Time `json:"last_event_at,omitzero"`
	LastSeqReceived uint64    `json:"last_seq_received"`
	AppliedSeq      uint64    `json:"applied_seq"`
	// Events is how many of the garage's events are stored.
	Events int64 `json:"events"`
	// Gap is the first run of seqs missing after AppliedSeq, being resent.
	Gap   *GapJSON   `json:"gap,omitempty"`
	Zones []ZoneJSON `json:"zones"`
}

// GapJSON is a run of missing seqs, From to To inclusive.
type GapJSON struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// ZoneJSON is a zone's count as the cloud last applied it.
type ZoneJSON struct {
	Zone      string    `json:"zone"`
	Occupied  int       `json:"occupied"`
	Capacity  int       `json:"capacity"`
	UpdatedAt time.Time `json:"updated_at"`
}

type api struct {
	db  *postgres.DB
	hub *natshub.Hub
	log *slog.Logger
}

func newAPI(db *postgres.DB, hub *natshub.Hub, ing *ingester, log *slog.Logger) http.Handler {
	a := &api{db: db, hub: hub, log: log.With("component", "http")}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMetrics(reg, db, hub, ing)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/facilities/{id}/status", a.facilityStatus)
	return mux
}

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.db.Pool().Ping(ctx); err != nil {
		a.log.Warn("not ready: database", "err", err)
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	if !a.hub.Conn().IsConnected() {
		http.Error(w, "hub unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

func (a *api) facilityStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !cloud.ValidFacilityID(id) {
		a.problem(w, r, cloud.Errorf(cloud.EINVALID, "invalid facility id %q", id))
		return
	}
	ctx := r.Context()
	st, err := a.db.FacilityStatus(ctx, id)
	if err != nil {
		a.problem(w, r, err)
		return
	}
	n, err := a.db.EventCount(ctx, id)
	if err != nil {
		a.problem(w, r, err)
		return
	}
	zones, err := a.db.Occupancy(ctx, id)
	if err != nil {
		a.problem(w, r, err)
		return
	}
	resp := FacilityStatusResponse{ID: st.ID, Name: st.Name, CreatedAt: st.CreatedAt, LastContact: st.LastContact,
		LastEventAt: st.LastEventAt, LastSeqReceived: st.LastSeqReceived, AppliedSeq: st.AppliedSeq, Events: n,
		Zones: make([]ZoneJSON, 0, len(zones))}
	if st.Gap != nil {
		resp.Gap = &GapJSON{From: st.Gap.From, To: st.Gap.To}
	}
	for _, z := range zones {
		resp.Zones = append(resp.Zones, ZoneJSON{Zone: z.Zone, Occupied: z.Occupied, Capacity: z.Capacity, UpdatedAt: z.UpdatedAt})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// problem answers with RFC 9457 problem details for err; internal details stay in the
// log.
func (a *api) problem(w http.ResponseWriter, r *http.Request, err error) {
	code := cloud.ErrorCode(err)
	status := map[string]int{
		cloud.EINVALID:     http.StatusBadRequest,
		cloud.ENOTFOUND:    http.StatusNotFound,
		cloud.ECONFLICT:    http.StatusConflict,
		cloud.EFORBIDDEN:   http.StatusForbidden,
		cloud.EUNAVAILABLE: http.StatusServiceUnavailable,
	}[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		a.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(status),
		"status": status,
		"detail": cloud.ErrorMessage(err),
		"code":   code,
	})
}

// registerMetrics adds the ingest's and the hub's counters to reg, read at scrape time.
func registerMetrics(reg prometheus.Registerer, db *postgres.DB, hub *natshub.Hub, ing *ingester) {
	counter := func(name, help string, fn func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(fn()) })
	}
	reg.MustRegister(
		counter("gatehouse_cloud_events_ingested_total", "Events stored in PostgreSQL for the first time.",
			func() uint64 { return db.Stats().Applied }),
		counter("gatehouse_cloud_events_duplicate_total", "Events received again that were already stored (redelivery, resend).",
			func() uint64 { return db.Stats().Duplicates }),
		counter("gatehouse_cloud_events_conflict_total", "Duplicates whose event id differs from the stored event's (a garage reusing seqs).",
			func() uint64 { return db.Stats().Conflicts }),
		counter("gatehouse_cloud_events_rejected_total", "Events that failed validation and were dropped.",
			func() uint64 { return db.Stats().Rejected }),
		counter("gatehouse_cloud_events_forged_total", "Hub messages dropped as forged (another garage's facility or message id) or undecodable.",
			func() uint64 { return hub.Stats().Invalid }),
		counter("gatehouse_cloud_gaps_total", "Gaps reported by ingested batches; a gap still open is reported by each batch of its garage.",
			ing.gaps.Load),
		counter("gatehouse_cloud_ingest_batches_total", "Batches committed to PostgreSQL.",
			func() uint64 { return hub.Stats().Batches }),
		counter("gatehouse_cloud_ingest_errors_total", "Batches that failed and were delivered again.",
			func() uint64 { return hub.Stats().IngestErrors }),
		counter("gatehouse_cloud_resend_requests_total", "Resend requests garages answered.",
			func() uint64 { return hub.Stats().ResendRequests }),
		counter("gatehouse_cloud_resend_failures_total", "Resend requests that failed (garage offline, timeout); retried.",
			func() uint64 { return hub.Stats().ResendFailures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gatehouse_cloud_facilities_with_gap",
			Help: "Garages whose stored events wait behind missing seqs."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			gaps, err := db.Gaps(ctx)
			if err != nil {
				return math.NaN()
			}
			return float64(len(gaps))
		}),
	)
}
