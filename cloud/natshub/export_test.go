package natshub

import "github.com/nats-io/nats-server/v2/server"

// Server is the embedded server, for tests to inspect.
func (h *Hub) Server() *server.Server { return h.srv }

// Dir is the hub's directory.
func (h *Hub) Dir() string { return h.cfg.Dir }
