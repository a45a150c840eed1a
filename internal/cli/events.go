package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/consign-dev/consign/client"
)

type eventsCmd struct {
	Send eventsSendCmd `cmd:"" help:"Publish an event; its payload is JSON from --file or standard input."`
	List eventsListCmd `cmd:"" help:"List an org's events, newest first, with their deliveries' states."`
	Get  eventsGetCmd  `cmd:"" help:"Show an event and its deliveries."`
}

type eventsSendCmd struct {
	remote
	orgFlag
	Type           string `required:"" help:"The event type, such as order.fulfilled."`
	File           string `help:"Read the payload from this file (- or none: standard input)."`
	IdempotencyKey string `help:"Publishing again with the same key within 72h returns the first event and delivers nothing twice."`
	OrderingKey    string `help:"Events with the same key reach ordered endpoints in order."`
}

// maxPayload is what the CLI reads as one event's payload: the server's default body limit.
const maxPayload = 256 << 10

// readPayload reads a JSON payload and checks it before it is sent.
func readPayload(env *runEnv, file string) (json.RawMessage, error) {
	b, err := readInput(env, file, maxPayload)
	if err != nil {
		return nil, err
	}
	name := file
	if name == "" || name == "-" {
		name = "standard input"
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, codeError{2, fmt.Errorf("no payload on %s: give --file or pipe the JSON in", name)}
	}
	if !json.Valid(b) {
		return nil, codeError{2, fmt.Errorf("the payload (%s) is not valid JSON", name)}
	}
	return json.RawMessage(b), nil
}

func (c *eventsSendCmd) Run(env *runEnv) error {
	payload, err := readPayload(env, c.File)
	if err != nil {
		return err
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	var opts []client.PublishOption
	if c.IdempotencyKey != "" {
		opts = append(opts, client.IdempotencyKey(c.IdempotencyKey))
	}
	e, err := s.Events.Publish(env.ctx, c.Org, client.EventInput{Type: c.Type, Payload: payload, OrderingKey: c.OrderingKey}, opts...)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		fields(w, "id", e.ID, "type", e.Type, "idempotency_key", e.IdempotencyKey, "ordering_key", e.OrderingKey,
			"created_at", e.CreatedAt)
		if e.Duplicate {
			fmt.Fprintln(w, "\nThe idempotency key was used before: this is the first event, and nothing is delivered again.")
		}
	})
}

type eventsListCmd struct {
	remote
	orgFlag
	pageFlags
	Type   string `help:"Only events of this type."`
	Search string `help:"Only events with this business key, such as an order id or PO number (the values at the pointers their event type names as keys)."`
}

func (c *eventsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Events.List(env.ctx, c.Org, &client.EventListOptions{Limit: c.Limit, Cursor: c.Cursor, Type: c.Type, Key: c.Search})
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "TYPE", "CREATED", "DELIVERIES")
		for _, e := range page.Data {
			t.row(e.ID, e.Type, e.CreatedAt, deliveriesText(e.Deliveries))
		}
		t.flush()
	})
}

// deliveriesText counts deliveries by state: "2 succeeded, 1 pending".
func deliveriesText(ds []client.DeliveryState) string {
	counts := map[string]int{}
	for _, d := range ds {
		counts[d.Status]++
	}
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
	}
	return strings.Join(parts, ", ")
}

type eventsGetCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The event's id."`
}

func (c *eventsGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	e, err := s.Events.Get(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		fields(w, "id", e.ID, "type", e.Type, "idempotency_key", e.IdempotencyKey, "ordering_key", e.OrderingKey,
			"created_at", e.CreatedAt, "payload", truncate(string(e.Payload), 500))
		if len(e.Deliveries) > 0 {
			fmt.Fprintln(w)
			t := newTable(w, "DELIVERY", "ENDPOINT", "STATUS", "ATTEMPTS")
			for _, d := range e.Deliveries {
				t.row(d.ID, d.EndpointID, d.Status, d.AttemptsCount)
			}
			t.flush()
		}
	})
}

type eventTypesCmd struct {
	List     eventTypesListCmd     `cmd:"" help:"List the catalog: built-in commerce topics and custom types."`
	Get      eventTypesGetCmd      `cmd:"" help:"Show an event type and its schema."`
	Create   eventTypesCreateCmd   `cmd:"" help:"Add a custom event type (admin key)."`
	Update   eventTypesUpdateCmd   `cmd:"" help:"Change an event type's description or business keys (admin key)."`
	Versions eventTypesVersionsCmd `cmd:"" help:"An event type's payload versions: list them, add one."`
}

type eventTypesVersionsCmd struct {
	List eventTypesVersionsListCmd `cmd:"" help:"List an event type's payload versions, oldest first."`
	Add  eventTypesVersionsAddCmd  `cmd:"" help:"Add a payload version (admin key): events of the type are published in it from now on; endpoints pinned to an earlier date receive them downgraded."`
}

type eventTypesVersionsListCmd struct {
	remote
	Name string `arg:"" help:"The event type's name."`
}

func (c *eventTypesVersionsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	vs, err := s.EventTypes.Versions(env.ctx, c.Name)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		t := newTable(w, "VERSION", "SCHEMA", "DOWNGRADE", "CREATED")
		for _, v := range vs {
			t.row(v.Version, len(v.Schema) > 0, fmt.Sprintf("%d bytes", len(v.Downgrade)), v.CreatedAt)
		}
		t.flush()
	})
}

type eventTypesVersionsAddCmd struct {
	remote
	Name          string `arg:"" help:"The event type's name."`
	Version       string `required:"" help:"The version: a date YYYY-MM-DD later than the type's newest version."`
	DowngradeFile string `required:"" help:"JavaScript defining function downgrade(payload) { … return payload }, which turns a payload of this version into the one before, from this file (- for standard input)."`
	SchemaFile    string `help:"A JSON Schema that the payloads of this version must satisfy, from this file; without it the type's schema checks them."`
}

func (c *eventTypesVersionsAddCmd) Run(env *runEnv) error {
	code, err := readInput(env, c.DowngradeFile, 1<<20)
	if err != nil {
		return err
	}
	in := client.EventTypeVersionInput{Version: c.Version, Downgrade: strings.TrimSpace(string(code))}
	if c.SchemaFile != "" {
		if in.Schema, err = readPayload(env, c.SchemaFile); err != nil {
			return err
		}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	v, err := s.EventTypes.AddVersion(env.ctx, c.Name, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		schema := "-"
		if len(v.Schema) > 0 {
			schema = truncate(string(v.Schema), 500)
		}
		fields(w, "type", c.Name, "version", v.Version, "schema", schema, "downgrade", fmt.Sprintf("%d bytes of JavaScript (--json shows it)", len(v.Downgrade)),
			"created_at", v.CreatedAt)
	})
}

type eventTypesListCmd struct {
	remote
}

func (c *eventTypesListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	ts, err := s.EventTypes.List(env.ctx)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		t := newTable(w, "NAME", "BUILTIN", "SCHEMA", "FOR", "DESCRIPTION")
		for _, et := range ts {
			t.row(et.Name, et.Builtin, len(et.Schema) > 0, rolesText(et.AvailableFor), et.Description)
		}
		t.flush()
	})
}

func rolesText(rs []client.Role) string {
	if len(rs) == 0 {
		return "all"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

type eventTypesGetCmd struct {
	remote
	Name string `arg:"" help:"The event type's name."`
}

func (c *eventTypesGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	et, err := s.EventTypes.Get(env.ctx, c.Name)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showEventType(w, et) })
}

type eventTypesCreateCmd struct {
	remote
	Name         string   `arg:"" help:"The name: dot-separated words such as return.approved."`
	Description  string   `help:"What the event means."`
	SchemaFile   string   `help:"A JSON Schema that every payload must satisfy, from this file."`
	AvailableFor []string `enum:"buyer,seller" help:"Only orgs of these roles may subscribe (buyer, seller); default all."`
	Keys         []string `name:"keys" help:"JSON pointers to the payload's business keys, such as /order_id,/lineItems/*/sku: events list --search finds events by their values (at most 8)."`
}

func (c *eventTypesCreateCmd) Run(env *runEnv) error {
	in := client.EventTypeInput{Name: c.Name, Description: c.Description, Keys: c.Keys}
	if c.SchemaFile != "" {
		schema, err := readPayload(env, c.SchemaFile)
		if err != nil {
			return err
		}
		in.Schema = schema
	}
	for _, r := range c.AvailableFor {
		in.AvailableFor = append(in.AvailableFor, client.Role(r))
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	et, err := s.EventTypes.Create(env.ctx, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showEventType(w, et) })
}

type eventTypesUpdateCmd struct {
	remote
	Name        string   `arg:"" help:"The event type's name."`
	Description *string  `help:"What the event means."`
	Keys        []string `name:"keys" help:"Replace the business keys: JSON pointers such as /order_id,/po_number (events published from then on are indexed by them)."`
	NoKeys      bool     `help:"Remove the business keys."`
}

func (c *eventTypesUpdateCmd) Run(env *runEnv) error {
	p := client.EventTypePatch{Description: c.Description, Keys: c.Keys}
	switch {
	case c.NoKeys && len(c.Keys) > 0:
		return codeError{2, fmt.Errorf("give --keys or --no-keys, not both")}
	case c.NoKeys:
		p.Keys = []string{}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	et, err := s.EventTypes.Update(env.ctx, c.Name, p)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showEventType(w, et) })
}

func showEventType(w io.Writer, et *client.EventType) {
	schema := "-"
	if len(et.Schema) > 0 {
		schema = truncate(string(et.Schema), 500)
	}
	keys := "-"
	if len(et.Keys) > 0 {
		keys = strings.Join(et.Keys, " ")
	}
	pairs := []any{"name", et.Name, "description", et.Description, "available_for", rolesText(et.AvailableFor),
		"builtin", et.Builtin, "keys", keys, "schema", schema}
	if len(et.Versions) > 0 {
		names := make([]string, len(et.Versions))
		for i, v := range et.Versions {
			names[i] = v.Version
		}
		pairs = append(pairs, "versions", strings.Join(names, ", ")+" (newest last; events are published in it)")
	}
	fields(w, append(pairs, "created_at", et.CreatedAt, "updated_at", et.UpdatedAt)...)
}

type deliveriesCmd struct {
	List  deliveriesListCmd  `cmd:"" help:"List an org's deliveries, newest first."`
	Show  deliveriesShowCmd  `cmd:"" help:"Show a delivery and its attempts."`
	Retry deliveriesRetryCmd `cmd:"" help:"Send a delivery again now."`
}

type deliveriesListCmd struct {
	remote
	orgFlag
	pageFlags
	Endpoint string `help:"Only deliveries to this endpoint."`
	Event    string `help:"Only deliveries of this event."`
	Status   string `help:"Only deliveries in this state: pending, delivering, succeeded, failed, paused, superseded, cancelled."`
	Search   string `help:"Only deliveries of the events with this business key, such as an order id or PO number."`
}

func (c *deliveriesListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Deliveries.List(env.ctx, c.Org, &client.DeliveryListOptions{Limit: c.Limit, Cursor: c.Cursor,
		EndpointID: c.Endpoint, EventID: c.Event, Status: c.Status, Key: c.Search})
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "STATUS", "ATTEMPTS", "EVENT", "ENDPOINT", "NEXT ATTEMPT", "TYPE")
		for _, d := range page.Data {
			t.row(d.ID, d.Status, d.AttemptsCount, d.EventID, d.EndpointID, d.NextAttemptAt, d.EventType)
		}
		t.flush()
	})
}

type deliveriesShowCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The delivery's id."`
}

func (c *deliveriesShowCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	d, err := s.Deliveries.Get(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showDelivery(w, d) })
}

type deliveriesRetryCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The delivery's id."`
}

func (c *deliveriesRetryCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	d, err := s.Deliveries.Retry(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showDelivery(w, d) })
}

// showDelivery prints a delivery, what its endpoint's reply named (response_reference,
// response_fields), a table of its attempts and then each attempt's response: status,
// headers and body, as the endpoint sent them.
func showDelivery(w io.Writer, d *client.Delivery) {
	pairs := []any{"id", d.ID, "status", d.Status, "event_id", d.EventID, "event_type", d.EventType,
		"endpoint_id", d.EndpointID, "attempts_count", d.AttemptsCount, "next_attempt_at", d.NextAttemptAt,
		"created_at", d.CreatedAt, "updated_at", d.UpdatedAt}
	if d.ResponseReference != nil {
		pairs = append(pairs, "response_reference", *d.ResponseReference)
	}
	for _, name := range slices.Sorted(maps.Keys(d.ResponseFields)) {
		pairs = append(pairs, "response_fields."+name, d.ResponseFields[name])
	}
	fields(w, pairs...)
	if len(d.Attempts) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := newTable(w, "N", "STARTED", "RESPONSE", "DURATION", "ERROR")
	for _, a := range d.Attempts {
		var status any
		switch r := a.Response; {
		case r != nil && r.Ack != nil:
			status = "ack" // a broker's acknowledgement, shown below
		case r != nil:
			status = r.Status
		}
		var errText any
		if a.Error != nil {
			errText = *a.Error
		}
		t.row(a.N, a.StartedAt, status, fmt.Sprintf("%dms", a.DurationMS), errText)
	}
	t.flush()
	for _, a := range d.Attempts {
		showResponse(w, &a)
	}
}

// showResponse prints what an attempt sent and what came back: the request line, the
// response's status line, its headers (sorted) and its body; for a broker destination,
// "publish" and the URL, then what the broker acknowledged. Control characters of the
// partner's reply are shown as U+FFFD, so that a reply cannot drive the terminal.
func showResponse(w io.Writer, a *client.Attempt) {
	method := a.Request.Method
	// A broker's URL (its password masked, so not one url.Parse takes): nothing of HTTP applies.
	if scheme, _, ok := strings.Cut(a.Request.URL, "://"); ok && !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		method = "publish"
	}
	fmt.Fprintf(w, "\nattempt %d: %s %s\n", a.N, method, printable(a.Request.URL))
	r := a.Response
	if r == nil {
		fmt.Fprintln(w, "no response")
		return
	}
	if r.Ack != nil {
		fmt.Fprintln(w, "acknowledged by the broker:")
		for _, name := range slices.Sorted(maps.Keys(r.Ack)) {
			fmt.Fprintf(w, "%s: %s\n", printable(name), printable(r.Ack[name]))
		}
		return
	}
	fmt.Fprintf(w, "%d %s\n", r.Status, http.StatusText(r.Status))
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		fmt.Fprintf(w, "%s: %s\n", printable(name), printable(r.Headers[name]))
	}
	if r.Body != "" {
		fmt.Fprintf(w, "\n%s\n", printable(r.Body))
	}
	if r.Truncated {
		fmt.Fprintln(w, "(body cut at the capture limit)")
	}
}

// printable replaces control characters other than newline and tab, and invalid UTF-8.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return utf8.RuneError
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
