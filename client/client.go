// Package client is the Go client of Consign's HTTP API (v1): orgs and their API keys,
// the event-type catalog, endpoints and their signing secrets, events, deliveries with
// their attempts, and inbound sources with their receipts.
//
// A Client is made once with the server's base URL and an API key (the admin key, or an
// org key, which reaches one org only) and is safe for concurrent use. Its fields group
// the operations by resource; every call takes a context:
//
//	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))
//	ep, err := c.Endpoints.Create(ctx, orgID, client.EndpointInput{
//		URL:    "https://partner.example.com/hooks",
//		Topics: []string{"order.*"},
//	})
//	// ep.Secret ("whsec_…") is shown this once: hand it to the partner.
//	ev, err := c.Events.Publish(ctx, orgID, client.EventInput{
//		Type:    "order.fulfilled",
//		Payload: map[string]any{"order_id": 1001},
//	}, client.IdempotencyKey("order-1001-fulfilled"))
//
// A reply that is not a success is an *Error carrying the API's problem document
// (status, title, detail and the invalid fields), found with errors.As. Lists come a
// page at a time (List) or as an iterator over every page (All):
//
//	for d, err := range c.Deliveries.All(ctx, orgID, &client.DeliveryListOptions{Status: "failed"}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(d.ID, d.EndpointID)
//	}
//
// The domain types of replies (Org, Endpoint, Delivery…) are those of the module's root
// package, under the names of this one. Receivers verify the webhooks Consign sends with
// package github.com/consign-dev/consign/webhook.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consign-dev/consign"
)

// DefaultTimeout bounds each call of a Client made without WithHTTPClient or WithTimeout.
const DefaultTimeout = 30 * time.Second

// maxReply bounds the bytes read from one reply. A delivery with its attempts is the
// largest reply: up to 64 KiB of captured response per attempt.
const maxReply = 64 << 20

// Client calls the Consign API. Its fields are the API's resources.
type Client struct {
	base      string
	key       string
	hc        *http.Client
	userAgent string

	Orgs       *OrgService
	Keys       *KeyService
	EventTypes *EventTypeService
	Endpoints  *EndpointService
	Secrets    *SecretService
	Events     *EventService
	Deliveries *DeliveryService
	Sources    *SourceService
	Jobs       *JobService
	// PortalLinks makes partner portal links.
	PortalLinks *PortalLinkService
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests with hc instead of a client of its own, for a custom
// transport, proxy or TLS configuration. hc's Timeout applies as it is set.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds each call, from the request to the end of the reply; default
// DefaultTimeout (30 s). Zero means no limit beyond the context's.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		hc := *c.hc
		hc.Timeout = d
		c.hc = &hc
	}
}

// WithUserAgent sets the User-Agent of requests; default "consign-go/<version>".
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client of the server at baseURL ("https://consign.example.com", or with
// a path prefix if a proxy adds one) that authenticates with key.
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		key:       key,
		hc:        &http.Client{Timeout: DefaultTimeout},
		userAgent: "consign-go/" + consign.Version,
	}
	for _, o := range opts {
		o(c)
	}
	c.Orgs = &OrgService{c}
	c.Keys = &KeyService{c}
	c.EventTypes = &EventTypeService{c}
	c.Endpoints = &EndpointService{c}
	c.Secrets = &SecretService{c}
	c.Events = &EventService{c}
	c.Deliveries = &DeliveryService{c}
	c.Sources = &SourceService{c}
	c.Jobs = &JobService{c}
	c.PortalLinks = &PortalLinkService{c}
	return c
}

// request is one API call.
type request struct {
	method string
	path   string // escaped
	query  url.Values
	body   any // encoded as JSON unless nil
	header http.Header
	out    any // decoded from a 2xx reply unless nil
}

// do sends r and returns the reply's status. A reply of 400 or more is an *Error.
func (c *Client) do(ctx context.Context, r request) (int, error) {
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return 0, fmt.Errorf("consign: encode %s %s: %w", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return 0, fmt.Errorf("consign: %w", err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("consign: %w", err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("consign: read reply to %s %s: %w", r.method, r.path, err)
	}
	if len(reply) > maxReply {
		return resp.StatusCode, fmt.Errorf("consign: reply to %s %s is over %d bytes", r.method, r.path, maxReply)
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, newError(resp, reply)
	}
	if r.out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(reply, r.out); err != nil {
			return resp.StatusCode, fmt.Errorf("consign: decode reply to %s %s: %w", r.method, r.path, err)
		}
	}
	return resp.StatusCode, nil
}

// path joins escaped segments under /v1: path("orgs", id) is "/v1/orgs/<id>".
func path(segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// Page is one page of a list. NextCursor, given back as ListOptions.Cursor, fetches
// the next page; it is empty on the last one.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// ListOptions selects a page of a list, newest first: at most Limit items (1 to 500;
// zero means the server's default, 50) after Cursor (empty: from the newest).
type ListOptions struct {
	Limit  int
	Cursor string
}

func (o *ListOptions) values() url.Values {
	q := url.Values{}
	if o == nil {
		return q
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// list fetches one page of a list at p.
func list[T any](ctx context.Context, c *Client, p string, q url.Values) (*Page[T], error) {
	var page Page[T]
	if _, err := c.do(ctx, request{method: http.MethodGet, path: p, query: q, out: &page}); err != nil {
		return nil, err
	}
	return &page, nil
}

// all iterates over every item of every page from cursor on, fetching pages as the loop
// needs them. An error is yielded once, with the zero T, and ends the iteration.
func all[T any](ctx context.Context, cursor string, fetch func(ctx context.Context, cursor string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			page, err := fetch(ctx, cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			// A cursor that does not move would loop for ever.
			if page.NextCursor == "" || page.NextCursor == cursor || len(page.Data) == 0 {
				return
			}
			cursor = page.NextCursor
		}
	}
}
