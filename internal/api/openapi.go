package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// reply is a route's reply body with a status other than 200.
type reply struct {
	status int
	body   any
}

func created(body any) reply  { return reply{http.StatusCreated, body} }
func accepted(body any) reply { return reply{http.StatusAccepted, body} }

// queryParams are the query parameters of routes beyond a list's limit and cursor.
var queryParams = map[string][]string{
	"GET /v1/orgs/{org}/events":                {"type", "key"},
	"GET /v1/orgs/{org}/deliveries":            {"endpoint_id", "event_id", "status", "key"},
	"GET /v1/orgs/{org}/jobs":                  {"endpoint_id"},
	"GET /v1/orgs/{org}/endpoints/{id}/stats":  {"window"},
	"GET /v1/orgs/{org}/sources/{id}/receipts": {"via", "status", "verified", "duplicate"},
}

var (
	pathParam = regexp.MustCompile(`\{(\w+)\}`)
	refs      = regexp.MustCompile(`"#/components/(?:schemas|responses)/(\w+)"`)
)

// documented reports whether a route is in the OpenAPI document: all but the
// ReadyCloud v2 compatibility routes, which follow ReadyCloud's own documentation.
func documented(rt route) bool { return !strings.HasPrefix(rt.pattern, "/api/v2/") }

// openAPI builds the OpenAPI 3.1 document of the routes.
func openAPI(routes []route) ([]byte, error) {
	sc := newSchemas()
	sc.defs["Problem"] = sc.object(reflect.TypeFor[problem]())
	problemRef := map[string]any{"$ref": "#/components/responses/Problem"}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		if !documented(rt) {
			continue
		}
		path := strings.ReplaceAll(rt.pattern, "{$}", "")
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": operationID(rt),
			"tags":        []string{tag(rt.pattern)},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		out, status := rt.out, http.StatusOK
		if r, ok := out.(reply); ok {
			out, status = r.body, r.status
		}
		if out != nil && strings.HasPrefix(reflect.TypeOf(out).Name(), "list[") {
			params = append(params,
				map[string]any{"name": "limit", "in": "query", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
				map[string]any{"name": "cursor", "in": "query", "schema": map[string]any{"type": "string"}, "description": "next_cursor of the previous page"})
		}
		for _, q := range queryParams[rt.method+" "+rt.pattern] {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if rt.method == "POST" && strings.HasSuffix(rt.pattern, "/events") {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.in != nil {
			op["requestBody"] = map[string]any{
				"required": !strings.Contains(rt.summary, "rotate") && !strings.HasSuffix(rt.pattern, "/test"),
				"content":  map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(rt.in))}},
			}
		}
		responses := map[string]any{"default": problemRef}
		if out == nil {
			responses["204"] = map[string]any{"description": "No Content"}
		} else {
			responses[fmt.Sprint(status)] = map[string]any{
				"description": http.StatusText(status),
				"content":     map[string]any{"application/json": map[string]any{"schema": sc.of(reflect.TypeOf(out))}},
			}
		}
		op["responses"] = responses
		switch rt.access {
		case public:
			op["security"] = []any{}
		case admin:
			op["description"] = "Needs the admin key."
		case orgMember:
			op["description"] = "Needs the admin key or a key of the org in the path."
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rt.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "Consign API",
			"version":     "1",
			"description": "Webhook delivery and inbound sources. Errors are RFC 9457 problem+json documents.",
		},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []string{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "an API key: the admin key or an org key"}},
			"schemas":         sc.defs,
			"responses": map[string]any{"Problem": map[string]any{
				"description": "An error (RFC 9457)",
				"content":     map[string]any{"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}},
			}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// operationID names an operation by its method and path words.
func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.method))
	for _, part := range strings.Split(rt.pattern, "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '.' || r == '_' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// tag groups operations by the first path word after /v1/orgs/{org}.
func tag(pattern string) string {
	parts := slices.DeleteFunc(strings.Split(pattern, "/"), func(p string) bool { return p == "" || p == "v1" || p == "{org}" })
	if len(parts) == 0 {
		return "service"
	}
	if parts[0] == "orgs" && len(parts) > 1 {
		return parts[1]
	}
	if parts[0] == "in" {
		return "sources"
	}
	if parts[0] == "event-types" {
		return parts[0]
	}
	return "service"
}

// openapi serves the OpenAPI document.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.doc)
	return err
}
