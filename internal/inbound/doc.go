// Package inbound receives partners' webhooks: sources (an unguessable ingest URL per
// provider and org), verification, dedupe, the turning of accepted requests into events,
// and the fallback poll that fills the gaps webhooks leave.
//
// # Design
//
// Receive path. POST /in/{token} finds its source by the SHA-256 of the token (the token
// itself is stored only sealed, to show the URL again), checks header and body limits,
// verifies the request with the source's scheme (pure functions in verify.go, constant-time
// comparisons), checks that the body is JSON, reads the dedupe key (a header, or an RFC 6901
// pointer into the body), and stores the raw request as a receipt in one durable
// transaction (fsync). Only then does it answer 2xx. Requests that fail verification are
// stored too (verified=false, with the reason), answered 401, and announced to the org as
// consign.source.verification_failed — at most once per source per minute, with a count of
// the failures not announced, so a flood of forgeries cannot flood the org's endpoints.
//
// Dedupe is the store's job, inside that transaction: of one source's receipts with one
// dedupe key, at most one is ever pending or processed (a unique index). A duplicate is
// stored as such, answered 2xx, and goes no further.
//
// Receipt to event. A receipt is made durable first and becomes an event second, in two
// transactions, rather than both at once: the event must go through ingest (catalog,
// schema, fan-out, group commit) like every other event, and the provider must be answered
// as soon as its request is safe, whatever the state of the event pipeline. The bridge is
// an idempotency key derived from the receipt: each pending receipt is published as an
// event of the source's topic with the body as payload and idempotency key
// "receipt:<rcp_id>", then settled (processed, with the event id). A crash anywhere
// between the two leaves the receipt pending; the processor looks for pending receipts
// when it starts and every Sweep after, and publishing one again returns the event made
// the first time instead of a second one (ingest's idempotency window is 72 h). So every
// accepted receipt becomes exactly one event. A receipt ingest refuses for good (its
// payload does not match the topic's schema, say) is settled as rejected with the reason.
//
// Fallback poll. A source may poll its provider's list on an interval (≥ 1 s) or a
// five-field cron schedule in a time zone. The schedule and a lease live in the store: a
// poller claims due sources by taking a lease (so that several processes poll a source
// once), keeps an in-process set of the polls it is running, GETs the list through a
// sender.Sender (SSRF guard, timeouts, capped body), and stores every item whose id (at
// id_pointer) was never accepted as a receipt via=poll, dropping the rest. Seen ids are
// the receipts themselves, compared by the same dedupe key as webhooks, so an item
// received by webhook is never polled into a second event. New poll receipts then take
// the same road to events as webhooks. The next run time is written when a run ends, so a
// restart neither skips nor repeats a run; a failed run is tried again after PollRetry if
// that is sooner than its next scheduled run.
package inbound
