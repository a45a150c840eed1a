package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	routes := (&Server{}).routes()
	raw, err := openAPI(routes)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("the document is not valid JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	want := map[string]bool{"POST /in/{token}": false, "GET /openapi.json": false}
	for _, rt := range routes {
		if documented(rt) {
			want[rt.method+" "+strings.ReplaceAll(rt.pattern, "{$}", "")] = false
		}
	}
	for key := range want {
		method, pattern, _ := strings.Cut(key, " ")
		if _, ok := doc.Paths[pattern][strings.ToLower(method)]; !ok {
			t.Errorf("%s is missing from the OpenAPI document", key)
		}
	}

	// Partner auth and signature formats are documented field by field.
	for _, want := range []string{`"client_secret"`, `"token_url"`, `"auth_style"`, `"timestamp_header"`, `"signed"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("the document does not describe %s", want)
		}
	}

	// Every $ref resolves, and every component is a valid JSON Schema 2020-12.
	for _, ref := range refs.FindAllSubmatch(raw, -1) {
		name := string(ref[1])
		if _, ok := doc.Components.Schemas[name]; !ok && name != "Problem" {
			t.Errorf("$ref to a missing schema %q", name)
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	whole, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("doc.json", whole); err != nil {
		t.Fatal(err)
	}
	for name := range doc.Components.Schemas {
		if _, err := c.Compile("doc.json#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

func TestSchemaOfTypes(t *testing.T) {
	t.Parallel()
	raw, err := openAPI((&Server{}).routes())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	ev := doc.Components.Schemas["Event"].Properties
	if ev["created_at"]["format"] != "date-time" {
		t.Errorf("event created_at = %v, want a date-time string", ev["created_at"])
	}
	if typ, _ := json.Marshal(ev["idempotency_key"]["type"]); string(typ) != `["string","null"]` {
		t.Errorf("event idempotency_key type = %s, want nullable string", typ)
	}
	if _, ok := ev["payload"]["type"]; ok {
		t.Errorf("event payload = %v, want any JSON value", ev["payload"])
	}
	rc := doc.Components.Schemas["ReceiptReply"].Properties
	if rc["id"] == nil || rc["event_id"] == nil {
		t.Errorf("receipt reply lacks the embedded receipt's fields or its own: %v", rc)
	}
}
