package api

import (
	"encoding/json"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/ingest"
)

// Request bodies of the routes that have no input type of their own elsewhere.

type keyInput struct {
	Name string `json:"name"`
}

type rotateInput struct {
	// Grace is how long the other secrets stay valid; default 24h.
	Grace consign.Duration `json:"grace"`
	Value string           `json:"value,omitempty"`
}

type secretExpiryInput struct {
	ExpiresAt *time.Time `json:"expires_at"`
}

type testInput struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

type recoverInput struct {
	Since  *time.Time `json:"since"`
	Until  *time.Time `json:"until"`
	Status []string   `json:"status"`
	Types  []string   `json:"types"`
}

type batchInput struct {
	Events []ingest.EventInput `json:"events"`
}

// anyBody stands for a body of any JSON (a provider's webhook).
type anyBody = json.RawMessage

// Reply shapes that handlers write as maps; they exist for the OpenAPI document only,
// so keep them equal to what the handlers send.

type statusReply struct {
	Status string `json:"status"`
}

type testReply struct {
	DeliveryID string           `json:"delivery_id"`
	EventID    string           `json:"event_id"`
	Status     string           `json:"status"`
	Attempt    *consign.Attempt `json:"attempt"`
}

// recoverReply is a recover run's job with how many deliveries it re-queued.
type recoverReply struct {
	consign.Job
	Requeued int `json:"requeued"`
}

type batchReply struct {
	Data []event `json:"data"`
}

type receiveReply struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Duplicate bool   `json:"duplicate"`
}
