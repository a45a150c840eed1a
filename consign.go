// Package consign holds Consign's domain: the nouns of a webhook platform for commerce
// (orgs, API keys, event types, endpoints, secrets, events, deliveries, attempts), their
// states and validation rules, and the one Error type every layer speaks.
//
// It imports nothing from the module. Storage lives behind internal/store, HTTP in
// internal/api, and the delivery engine in internal/dispatch; all of them exchange the
// types declared here.
package consign

// Version is the release of this build; it is sent in the User-Agent of every delivery.
const Version = "0.1.0"

// UserAgent is the User-Agent header of outbound webhook requests.
const UserAgent = "Consign/" + Version
