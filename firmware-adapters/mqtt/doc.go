// Package mqtt is the edge's driver for wireless spot sensors that report over MQTT,
// directly or through a LoRaWAN network server (ChirpStack v4).
//
// A Driver holds one MQTT connection (eclipse/paho) to a broker: the embedded NATS
// server's MQTT listener (package edge/natsbus) or an external broker such as
// Mosquitto. It subscribes with QoS 1 to each sensor's topic in a persistent session
// (clean session off, stable client id), so readings published while the edge was
// disconnected are delivered when it comes back. Each sensor's occupancy reaches the
// garage as an edge.SpotChanged event when it changes (the first reading always), and
// its health as edge.DeviceHealth: a sensor silent for longer than its "silence"
// option is unhealthy until its next message, and every sensor is unhealthy while the
// broker is unreachable.
//
// Device configuration (edge.Device):
//
//	kind: spot_sensor
//	protocol: mqtt
//	address: sensors/L1/EV01          # the topic the sensor publishes on
//	profile: json                     # or chirpstack
//	options:
//	  field: occupied                 # occupancy field (dots for nested objects)
//	  silence: 15m                    # unhealthy after this long without a message
//	  byte: "0"                       # chirpstack, no codec: occupancy is bit "bit"
//	  bit: "0"                        #   of byte "byte" of the base64 data
//	  dev_eui: 0004a30b001c0530       # chirpstack: expected devEui (default: from topic)
//	  heartbeat: 60s                  # used by the simulator only
//
// Payloads, malformed messages and the counters are described in docs/mqtt-sensors.md.
package mqtt
