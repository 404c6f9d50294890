package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gatehouse-parking/gatehouse/cloud/auth"
	"github.com/gatehouse-parking/gatehouse/cloud/httpapi"
	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	"github.com/gatehouse-parking/gatehouse/cloud/payment"
	"github.com/gatehouse-parking/gatehouse/cloud/postgres"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newAPI returns the REST API (cloud/httpapi) with the ingest's and the hub's metrics
// on its /metrics.
func newAPI(db *postgres.DB, hub *natshub.Hub, ing *ingester, accounts *auth.Service, provider payment.Provider, trustProxy bool, log *slog.Logger) *fiber.App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMetrics(reg, db, hub, ing)
	return httpapi.New(httpapi.Config{
		DB: db, Auth: accounts, Hub: hubAPI{hub}, Registry: reg, TrustProxy: trustProxy,
		Payments: httpapi.Payments{Provider: provider},
		Logger:   log.With("component", "http"),
		Ready: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := db.Pool().Ping(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			if !hub.Conn().IsConnected() {
				return errors.New("hub connection down")
			}
			return nil
		},
	})
}

// InitialAdminFile, in the data directory, holds the credentials of the admin account
// a cloud creates when its database has none, readable by the owner only. Log in,
// change the password (POST /v1/auth/password) and delete the file.
const InitialAdminFile = "initial-admin.json"

// initialAdmin is the content of InitialAdminFile.
type initialAdmin struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// ensureAdmin creates an admin account when the database has none, so that a new
// fleet can be administered at all, and writes its credentials to InitialAdminFile. It
// returns a line for the banner.
func ensureAdmin(ctx context.Context, db *postgres.DB, accounts *auth.Service, dataDir string) (string, error) {
	var exists bool
	if err := db.Pool().QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')").Scan(&exists); err != nil {
		return "", fmt.Errorf("look for an admin account: %w", err)
	}
	file := filepath.Join(dataDir, InitialAdminFile)
	if exists {
		if _, err := os.Stat(file); err == nil {
			return "see " + file + " (delete it once the password is changed)", nil
		}
		return "(accounts exist; gatehouse-cloud user add makes more)", nil
	}
	var b [18]byte
	rand.Read(b[:])
	adm := initialAdmin{Email: "admin@gatehouse.local", Password: base64.RawURLEncoding.EncodeToString(b[:])}
	if _, err := accounts.CreateUser(ctx, adm.Email, "Initial admin", adm.Password, cloud.RoleAdmin, nil); err != nil {
		return "", fmt.Errorf("create the initial admin: %w", err)
	}
	j, _ := json.MarshalIndent(adm, "", "  ")
	if err := os.WriteFile(file, append(j, '\n'), 0o600); err != nil {
		return "", err
	}
	return adm.Email + " with the password in " + file + " (change it, then delete the file)", nil
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
