package client_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
)

// TestInputsCoverTheAPI compares each input type of the client with the request body
// the server documents (GET /openapi.json): a field the API takes and the client lacks
// cannot be sent, and the CLI, which decodes --from-file into these types, refuses it
// as unknown.
func TestInputsCoverTheAPI(t *testing.T) {
	t.Parallel()
	s := start(t)
	resp, err := http.Get(s.url + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	properties := func(t *testing.T, method, path string) []string {
		op, ok := doc.Paths[path][method]
		require.True(t, ok, "%s %s is documented", method, path)
		var schema struct {
			Ref        string                     `json:"$ref"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(op.RequestBody.Content["application/json"].Schema, &schema))
		props := schema.Properties
		if schema.Ref != "" {
			props = doc.Components.Schemas[strings.TrimPrefix(schema.Ref, "#/components/schemas/")].Properties
		}
		var names []string
		for name := range props {
			names = append(names, name)
		}
		slices.Sort(names)
		return names
	}
	tests := []struct {
		method, path string
		in           any
		skip         []string // fields the client leaves out on purpose
	}{
		{"post", "/v1/orgs/{org}/endpoints", client.EndpointInput{}, nil},
		{"patch", "/v1/orgs/{org}/endpoints/{id}", client.EndpointPatch{}, []string{"secret", "secret_expires_at"}},
		{"post", "/v1/orgs/{org}/endpoints/{id}/secrets", client.SecretInput{}, nil},
		{"post", "/v1/orgs/{org}/sources", client.SourceInput{}, nil},
		{"post", "/v1/orgs/{org}/endpoints/{id}/replay", client.ReplayInput{}, nil},
		{"post", "/v1/orgs/{org}/endpoints/{id}/recover", client.RecoverInput{}, nil},
		{"patch", "/v1/orgs/{org}", client.OrgInput{}, nil},
		{"post", "/v1/orgs/{org}/portal-links", client.PortalLinkInput{}, nil},
		{"post", "/v1/event-types", client.EventTypeInput{}, nil},
		{"patch", "/v1/event-types/{name}", client.EventTypePatch{}, []string{"name"}},
		{"post", "/v1/event-types/{name}/versions", client.EventTypeVersionInput{}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.ToUpper(tt.method)+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			want := slices.DeleteFunc(properties(t, tt.method, tt.path), func(n string) bool { return slices.Contains(tt.skip, n) })
			require.Equal(t, want, jsonFields(reflect.TypeOf(tt.in)), "%T against the API's request body", tt.in)
		})
	}
}

// jsonFields returns the JSON names of a struct's fields, sorted.
func jsonFields(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			names = append(names, jsonFields(f.Type)...)
			continue
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
