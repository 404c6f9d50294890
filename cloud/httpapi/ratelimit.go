package httpapi

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// Rate-limit keys: per client address on every /v1 request, per principal (account or
// API key) on every authenticated one, and per address on the routes that check
// passwords or refresh tokens.
const (
	limitIP        = "ip"
	limitPrincipal = "principal"
)

// Limit is a token bucket: Rate requests per second on average, Burst at once.
type Limit struct {
	Rate  float64
	Burst int
}

// Limits are the API's rate limits.
type Limits struct {
	// PerIP bounds every /v1 request by client address.
	PerIP Limit
	// PerPrincipal bounds the requests of one account or API key.
	PerPrincipal Limit
	// Auth bounds login, registration and refresh per client address: the guard
	// against password guessing.
	Auth Limit
}

// DefaultLimits are generous for apps and tight for password guessing.
var DefaultLimits = Limits{
	PerIP:        Limit{Rate: 200, Burst: 400},
	PerPrincipal: Limit{Rate: 50, Burst: 100},
	Auth:         Limit{Rate: 10.0 / 60, Burst: 10},
}

func (l Limits) withDefaults() Limits {
	if l.PerIP.Rate == 0 {
		l.PerIP = DefaultLimits.PerIP
	}
	if l.PerPrincipal.Rate == 0 {
		l.PerPrincipal = DefaultLimits.PerPrincipal
	}
	if l.Auth.Rate == 0 {
		l.Auth = DefaultLimits.Auth
	}
	return l
}

// limiter keeps a token bucket per class and key, forgetting buckets idle for longer
// than it takes them to refill.
type limiter struct {
	limits map[string]Limit
	mu     sync.Mutex
	b      map[string]*bucket
	swept  time.Time
}

type bucket struct {
	l    *rate.Limiter
	used time.Time
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: map[string]Limit{limitIP: l.PerIP, limitPrincipal: l.PerPrincipal, limitAuth: l.Auth},
		b: map[string]*bucket{}, swept: time.Now()}
}

// limitError says how long to wait.
type limitError struct{ retry time.Duration }

func (e *limitError) Error() string { return fmt.Sprintf("rate limited; retry in %v", e.retry) }

// allow takes a token from the bucket of class and key, or says how long to wait.
func (l *limiter) allow(class, key string) error {
	lim := l.limits[class]
	if math.IsInf(lim.Rate, 1) {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.b {
			if now.Sub(b.used) > 10*time.Minute {
				delete(l.b, k)
			}
		}
		l.swept = now
	}
	k := class + "|" + key
	b := l.b[k]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)}
		l.b[k] = b
	}
	b.used = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &limitError{retry: d}
	}
	return nil
}

// tooMany answers 429 with Retry-After.
func (a *api) tooMany(c *fiber.Ctx, err error) error {
	if le, ok := err.(*limitError); ok {
		c.Set(fiber.HeaderRetryAfter, fmt.Sprint(int(math.Ceil(le.retry.Seconds()))))
	}
	return cloud.Errorf(cloud.ETOOMANY, "too many requests; retry after the time in Retry-After")
}
