package consign

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// EventType is an entry of the catalog: a topic name, what it means, who may subscribe,
// an optional JSON Schema that every payload of the type must satisfy, and the business
// keys its events are found by.
type EventType struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	// Keys are JSON pointers into the payload ("/order_id", "/lineItems/*/sku") whose
	// values are indexed at publish: GET …/events?key=1001 finds the events whose keys
	// hold 1001. At most MaxEventTypeKeys.
	Keys         []string `json:"keys,omitempty"`
	AvailableFor []Role   `json:"available_for,omitempty"`
	// Versions are the type's payload versions, oldest first (none: the type is not
	// versioned). Events are published in the newest.
	Versions  []EventTypeVersion `json:"versions,omitempty"`
	Builtin   bool               `json:"builtin"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// EventTypeVersion is one version of an event type's payload. From the moment it is
// added, events of the type are published in its shape (checked by Schema when set,
// else by the type's schema); Downgrade is JavaScript, function downgrade(payload) { …
// return payload }, that turns a payload of this version into the shape of the version
// before it (or, for the first version, into the type's shape before it had versions).
// An endpoint pinned to an earlier date receives payloads converted down step by step.
type EventTypeVersion struct {
	// Version is a date, YYYY-MM-DD; each is later than the one before.
	Version   string          `json:"version"`
	Schema    json.RawMessage `json:"schema,omitempty"`
	Downgrade string          `json:"downgrade"`
	CreatedAt time.Time       `json:"created_at"`
}

// Limits on versions.
const (
	// MaxVersions bounds how many versions a type may have.
	MaxVersions = 100
	// MaxDowngrade bounds a downgrade's code, in bytes.
	MaxDowngrade = 64 << 10
)

// ValidVersion reports why v is not a version (a date YYYY-MM-DD such as 2026-12-01),
// or "" when it is.
func ValidVersion(v string) string {
	if v == "" {
		return "is required: a date such as 2026-12-01"
	}
	if t, err := time.Parse(time.DateOnly, v); err != nil || t.Format(time.DateOnly) != v {
		return fmt.Sprintf("%q is not a date YYYY-MM-DD such as 2026-12-01", truncateText(v, 40))
	}
	return ""
}

// VersionAt returns the index in vs (oldest first) of the version payloads of the type
// had at t: the newest added at or before t; -1 when t is before the first.
func VersionAt(vs []EventTypeVersion, t time.Time) int {
	i := len(vs) - 1
	for i >= 0 && vs[i].CreatedAt.After(t) {
		i--
	}
	return i
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// MaxEventTypeKeys is how many key pointers an event type may name.
const MaxEventTypeKeys = 8

// OperationalPrefix starts the names of the events Consign emits about itself.
const OperationalPrefix = "consign."

// Operational event types.
const (
	TypeEndpointDisabled         = "consign.endpoint.disabled"
	TypeEndpointEnabled          = "consign.endpoint.enabled"
	TypeCertificateExpiring      = "consign.endpoint.certificate_expiring"
	TypeDeliveryExhausted        = "consign.delivery.exhausted"
	TypeSourceVerificationFailed = "consign.source.verification_failed"
	TypeTest                     = "consign.test"
)

// Payload schemas of the Modern Dropship topics (seed 001): deliberately loose, so that
// platforms may add and omit fields: an order or product is a JSON object whose id, when
// present, is a string or integer and whose lists are arrays of objects; the
// "unavailable" topics carry only the id(s) of what went away.
var (
	orderSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Seller order",
"type":"object","properties":{"id":{"type":["string","integer"]},
"lineItems":{"type":"array","items":{"type":"object"}},"fulfillments":{"type":"array","items":{"type":"object"}}}}`)
	productSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Buyer product",
"type":"object","properties":{"id":{"type":["string","integer"]},"title":{"type":"string"},
"variants":{"type":"array","items":{"type":"object"}}}}`)
	idSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Product deleted (its id only)",
"type":"object","required":["id"],"properties":{"id":{"type":["string","integer"]}},"additionalProperties":false}`)
	idsSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Variants deleted (their ids only)",
"type":"object","required":["ids"],"properties":{"ids":{"type":"array","minItems":1,"items":{"type":["string","integer"]}}},"additionalProperties":false}`)
)

// certificateExpiringSchema is the payload of consign.endpoint.certificate_expiring.
var certificateExpiringSchema = json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Client certificate expiring",
"type":"object","required":["endpoint_id","org_id","subject","issuer","not_after","days_left"],
"properties":{"endpoint_id":{"type":"string"},"org_id":{"type":"string"},"url":{"type":"string"},"subject":{"type":"string"},
"issuer":{"type":"string"},"not_after":{"type":"string","format":"date-time"},"days_left":{"type":"integer"}}}`)

// BuiltinEventTypes returns the commerce topics every installation knows, named exactly
// as the platforms Consign serves name them (Modern Dropship, Onport, ReadyCloud,
// DropStream/Deposco), plus Consign's operational events.
//
// Each commerce type names the business keys its platforms' payloads carry (Modern
// Dropship's orders and products, Onport's purchase orders, ReadyCloud's orders, a
// Deposco shipment), under the names those platforms use and the snake_case ones of
// hand-made payloads.
func BuiltinEventTypes() []EventType {
	buyers := []Role{RoleBuyer}
	both := []Role{RoleBuyer, RoleSeller}
	// Orders are the busiest topics: their keys are top-level fields, which cost one row
	// of the index each. Line items' SKUs (an array decoded per event, and a key shared by
	// thousands of orders) are left for a type to add: "/lineItems/*/sku".
	orderKeys := []string{"/id", "/order_id", "/order_number", "/po_number", "/primary_id"}
	productKeys := []string{"/id", "/sku", "/variants/*/sku", "/variants/*/id"}
	return []EventType{
		{Name: "order.created", Description: "An order was placed.", Keys: orderKeys},
		{Name: "order.updated", Description: "An order changed, including its boxes and items.", Keys: orderKeys},
		{Name: "order.fulfilled", Description: "A fulfillment was added to an order (not when one is updated).", AvailableFor: buyers, Schema: orderSchema, Keys: orderKeys},
		{Name: "order.cancelled", Description: "One or more line items of an order were cancelled.", AvailableFor: both, Schema: orderSchema, Keys: orderKeys},
		{Name: "product.selected", Description: "A product was selected by a user.", AvailableFor: buyers, Schema: productSchema, Keys: productKeys},
		{Name: "product.inventoryChanged", Description: "The inventory quantity of a product's variant was updated by the seller.", AvailableFor: buyers, Schema: productSchema, Keys: productKeys},
		{Name: "product.unavailable", Description: "A product is no longer available from a seller (payload: the product's id).", AvailableFor: buyers, Schema: idSchema, Keys: []string{"/id"}},
		{Name: "variant.unavailable", Description: "Variants are no longer available from a seller (payload: the variants' ids).", AvailableFor: buyers, Schema: idsSchema, Keys: []string{"/ids"}},
		{Name: "inventory.updated", Description: "An inventory level changed at a location.", Keys: []string{"/sku", "/variant_id", "/inventory_item_id", "/location_id"}},
		{Name: "purchase_order.created", Description: "A dropship purchase order was created for a vendor.",
			Keys: []string{"/po_number", "/order_id", "/purchase/id", "/purchase/reference", "/sale/reference", "/purchaseItems/*/variant/sku", "/line_items/*/sku"}},
		{Name: "shipment.created", Description: "An order shipped; a shipment notification was received.",
			Keys: []string{"/id", "/shipment_id", "/order_id", "/orderNumber", "/customerOrderNumber", "/trackingNumber", "/tracking_number", "/lines/*/sku"}},
		{Name: "label.created", Description: "A shipping label was printed.", Keys: []string{"/id", "/label_id", "/shipment_id", "/order_id", "/tracking_number"}},
		{Name: "packaging.updated", Description: "Packaging changed."},
		{Name: "contact.updated", Description: "A contact changed, without related objects."},
		{Name: "contact_address.updated", Description: "A contact address changed, without the related contact."},
		{Name: "acceptance_scan.created", Description: "A carrier acceptance scan was recorded for an order.", Keys: []string{"/order_id", "/tracking_number"}},
		{Name: "webhook.updated", Description: "A calendar webhook changed."},
		{Name: TypeEndpointDisabled, Description: "Consign deactivated an endpoint (failure policy, 410 Gone, or by hand)."},
		{Name: TypeEndpointEnabled, Description: "An endpoint was activated again."},
		{Name: TypeCertificateExpiring, Description: "An endpoint's client certificate expires within 14 days (once per certificate).", Schema: certificateExpiringSchema},
		{Name: TypeDeliveryExhausted, Description: "A delivery failed for good after its retries."},
		{Name: TypeSourceVerificationFailed, Description: "An inbound request failed verification."},
		{Name: TypeTest, Description: "A test event sent from the API or dashboard."},
	}
}

// ValidTypeName reports why name is not a usable event type name, or "" when it is.
// Names are dot-separated segments of letters, digits, '_' and '-' ("order.fulfilled",
// "product.inventoryChanged").
func ValidTypeName(name string) string {
	if name == "" {
		return "is required"
	}
	if len(name) > 100 {
		return "must be at most 100 characters"
	}
	for seg := range strings.SplitSeq(name, ".") {
		if seg == "" {
			return "must be dot-separated words such as order.fulfilled"
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return "may contain only letters, digits, '_', '-' and '.'"
			}
		}
	}
	return ""
}

// ValidTopic reports why topic is not a usable subscription pattern, or "" when it is:
// a type name, a prefix ending in ".*" ("order.*"), or "*".
func ValidTopic(topic string) string {
	if topic == "*" {
		return ""
	}
	if base, ok := strings.CutSuffix(topic, ".*"); ok {
		return ValidTypeName(base)
	}
	return ValidTypeName(topic)
}

// TopicMatches reports whether a subscription pattern matches an event type. "*" matches
// every type except Consign's own operational events, which must be named or matched by
// "consign.*" so that partners are not sent them by accident.
func TopicMatches(pattern, typ string) bool {
	switch {
	case pattern == "*":
		return !strings.HasPrefix(typ, OperationalPrefix)
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(typ, pattern[:len(pattern)-1])
	default:
		return pattern == typ
	}
}
