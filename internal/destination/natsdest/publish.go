package natsdest

import "errors"

// What a connection's publisher hands each attempt, on either build: the default one
// (batch.go, natsdest's own publish and ack) and the standard one (publish_stdlib.go,
// nats.go's asynchronous JetStream publish). Both offer newPublisher, publish, forget
// and close with the same meaning.

// answer is what became of a publish: the stream's ack, or why there is none.
type answer struct {
	ack ack
	err error
}

// ack is a stream's PubAck.
type ack struct {
	Stream    string `json:"stream"`
	Sequence  uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// errStopped is the answer of the publishes a closed connection still had waiting.
var errStopped = errors.New("the connection was closed before the stream answered")
