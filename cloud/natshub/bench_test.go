package natshub_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-parking/gatehouse/cloud/natshub"
	gh "github.com/gatehouse-parking/gatehouse/proto/gatehouse/v1"
)

type countIngester struct{ n atomic.Int64 }

func (c *countIngester) Ingest(_ context.Context, envs []*gh.Envelope) (int, int, []natshub.Gap, error) {
	c.n.Add(int64(len(envs)))
	return len(envs), 0, nil, nil
}

// BenchmarkConsume measures how fast Consume drains a backlog into an Ingester that
// does nothing: the hub's share of the drain after an outage.
func BenchmarkConsume(b *testing.B) {
	h, _ := startHub(b, b.TempDir())
	const backlog = 50_000
	publishEvents(b, h, "a", 1, backlog)
	b.ResetTimer()
	for i := range b.N {
		ing := &countIngester{}
		start := time.Now()
		stop := runConsume(b, h, ing, natshub.ConsumeOptions{Durable: "bench-" + itoa(uint64(i))})
		waitFor(b, "the backlog", func() bool { return ing.n.Load() == backlog })
		stop()
		b.ReportMetric(backlog/time.Since(start).Seconds(), "events/s")
	}
}
