package cli_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/client"
	"github.com/consign-dev/consign/webhook"
)

// step is one command of a scenario. Its args may name values kept by earlier steps
// as {name}.
type step struct {
	name  string // golden file under testdata; "" for none
	args  []string
	stdin string
	code  int
	json  bool              // stdout is JSON: the golden file shows it indented
	keep  map[string]string // name → id prefix: keep the first such id of stdout as {name}
	wait  func(t *testing.T, vars map[string]string)
}

// TestClientCommands runs a session of client commands against a real server and
// compares each transcript with its golden file.
func TestClientCommands(t *testing.T) {
	t.Parallel()
	s := start(t)
	rcv := newReceiver(t)
	c := client.New(s.url, adminKey)
	dir := t.TempDir()
	epFile := filepath.Join(dir, "endpoint.json")
	require.NoError(t, os.WriteFile(epFile, []byte(`{"url": "`+rcv.srv.URL+`/raw", "topics": ["inventory.updated"],
		"method": "PUT", "payload_format": "raw", "headers": {"X-From": "file"}}`), 0o644))
	schemaFile := filepath.Join(dir, "schema.json")
	require.NoError(t, os.WriteFile(schemaFile, []byte(`{"type": "object", "required": ["rma"]}`), 0o644))
	caFile, certFile, keyFile := writeTLSFiles(t, dir)
	downgradeFile := filepath.Join(dir, "downgrade.js")
	require.NoError(t, os.WriteFile(downgradeFile, []byte("function downgrade(payload) {\n  payload.id = payload.rma; delete payload.rma;\n  return payload;\n}\n"), 0o644))
	badFile := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badFile, []byte(`{"url": "https://example.com", "topic": ["order.*"]}`), 0o644))

	delivered := func(n int) func(t *testing.T, vars map[string]string) {
		return func(t *testing.T, vars map[string]string) {
			require.Eventually(t, func() bool {
				p, err := c.Deliveries.List(t.Context(), vars["org"], &client.DeliveryListOptions{Status: client.StatusSucceeded})
				return err == nil && len(p.Data) == n
			}, 10*time.Second, 10*time.Millisecond)
		}
	}
	steps := []step{
		{name: "orgs-create", args: []string{"orgs", "create", "Acme Outdoor", "--role", "buyer"}, keep: map[string]string{"org": "org_"}},
		{args: []string{"orgs", "create", "Birch Supply"}, keep: map[string]string{"org2": "org_"}},
		{name: "orgs-list", args: []string{"orgs", "list"}},
		{name: "orgs-list-page", args: []string{"orgs", "list", "--limit", "1"}},
		{name: "orgs-get-json", args: []string{"orgs", "get", "{org}", "--json"}, json: true},
		{name: "orgs-update", args: []string{"orgs", "update", "{org2}", "--name", "Birch Supply Co.", "--role", "buyer"}},
		{name: "orgs-create-invalid", args: []string{"orgs", "create", " "}, code: 1},
		{name: "orgs-update-branding", args: []string{"orgs", "update", "{org2}", "--brand-name", "Birch Partner Hub", "--brand-color", "#1F6FEB",
			"--brand-logo", "https://cdn.birch.example/logo.png"}},
		{name: "orgs-update-branding-clear", args: []string{"orgs", "update", "{org2}", "--brand-logo", ""}},
		{name: "orgs-update-branding-invalid", args: []string{"orgs", "update", "{org2}", "--brand-color", "blue", "--brand-logo", "http://x.example/l.png"}, code: 1},
		{name: "portal-links-create", args: []string{"portal-links", "create", "--org", "{org2}", "--expires-in", "30m", "--read-only"}},
		{name: "portal-links-create-too-long", args: []string{"portal-links", "create", "--org", "{org2}", "--expires-in", "30d"}, code: 1},

		{name: "keys-create", args: []string{"keys", "create", "--org", "{org}", "--name", "ci"}, keep: map[string]string{"key": "key_"}},
		{name: "keys-list", args: []string{"keys", "list", "--org", "{org}"}},
		{name: "keys-delete", args: []string{"keys", "delete", "--org", "{org}", "{key}"}},

		{name: "event-types-create", args: []string{"event-types", "create", "return.approved", "--description", "A return was approved.",
			"--schema-file", schemaFile}},
		{name: "event-types-get", args: []string{"event-types", "get", "order.fulfilled"}},
		{name: "event-types-update-keys", args: []string{"event-types", "update", "return.approved", "--keys", "/rma,/order_id"}},
		{name: "event-types-versions-add", args: []string{"event-types", "versions", "add", "return.approved", "--version", "2026-12-01",
			"--downgrade-file", downgradeFile, "--schema-file", schemaFile}},
		{name: "event-types-versions-add-invalid", args: []string{"event-types", "versions", "add", "return.approved", "--version", "2026-11-31",
			"--downgrade-file", "-"}, stdin: "function handler(w) { return w }", code: 1},
		{name: "event-types-versions-list", args: []string{"event-types", "versions", "list", "return.approved"}},
		{name: "event-types-get-versions", args: []string{"event-types", "get", "return.approved"}},

		{name: "endpoints-create", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/hooks",
			"--topic", "order.*", "--topic", "return.approved", "--header", "X-Partner=acme", "--rate-limit", "5",
			"--burst-limit", "2", "--ordering", "key"}, keep: map[string]string{"ep": "ep_"}},
		{name: "endpoints-create-from-file", args: []string{"endpoints", "create", "--org", "{org}", "--from-file", epFile,
			"--description", "inventory feed", "--coalesce"}, keep: map[string]string{"ep2": "ep_"}},
		{name: "endpoints-create-invalid", args: []string{"endpoints", "create", "--org", "{org}", "--url", "https://example.com",
			"--topic", "no such topic", "--method", "GET"}, code: 1},
		{name: "endpoints-create-bad-file", args: []string{"endpoints", "create", "--org", "{org}", "--from-file", badFile}, code: 2},
		{name: "endpoints-create-bad-header", args: []string{"endpoints", "create", "--org", "{org}", "--header", "X-Partner"}, code: 2},
		{name: "endpoints-list", args: []string{"endpoints", "list", "--org", "{org}"}},
		{name: "endpoints-get", args: []string{"endpoints", "get", "--org", "{org}", "{ep}"}},
		{name: "endpoints-get-missing", args: []string{"endpoints", "get", "--org", "{org}", "ep_nope"}, code: 1},
		{name: "endpoints-deactivate", args: []string{"endpoints", "update", "--org", "{org}", "{ep2}", "--no-active", "--rate-limit", "1"}},
		{name: "endpoints-discard-without-active", args: []string{"endpoints", "update", "--org", "{org}", "{ep2}", "--discard-paused"}, code: 1},
		{name: "endpoints-activate-discard", args: []string{"endpoints", "update", "--org", "{org}", "{ep2}", "--active", "--discard-paused"}},
		{name: "endpoints-deactivate-again", args: []string{"endpoints", "update", "--org", "{org}", "{ep2}", "--no-active"}},
		{name: "endpoints-test", args: []string{"endpoints", "test", "--org", "{org}", "{ep}", "--type", "order.fulfilled", "--file", "-"},
			stdin: `{"order_id": 1}`},

		{name: "secrets-add", args: []string{"secrets", "add", "--org", "{org}", "--endpoint", "{ep}", "--expires-in", "30d"}, keep: map[string]string{"sec": "sec_"}},
		{name: "secrets-rotate", args: []string{"secrets", "rotate", "--org", "{org}", "--endpoint", "{ep}", "--grace", "1h"}},
		{name: "secrets-list", args: []string{"secrets", "list", "--org", "{org}", "--endpoint", "{ep}"}},
		{name: "secrets-update", args: []string{"secrets", "update", "--org", "{org}", "--endpoint", "{ep}", "{sec}", "--expires-at", "2027-06-01T00:00:00Z"}},
		{name: "secrets-update-no-expiry", args: []string{"secrets", "update", "--org", "{org}", "--endpoint", "{ep}", "{sec}", "--no-expiry", "--json"}, json: true},
		{name: "secrets-update-nothing", args: []string{"secrets", "update", "--org", "{org}", "--endpoint", "{ep}", "{sec}"}, code: 2},
		{name: "secrets-update-two", args: []string{"secrets", "update", "--org", "{org}", "--endpoint", "{ep}", "{sec}", "--no-expiry", "--expires-in", "1h"}, code: 2},
		{name: "secrets-delete", args: []string{"secrets", "delete", "--org", "{org}", "--endpoint", "{ep}", "{sec}"}},

		{name: "events-send", args: []string{"events", "send", "--org", "{org}", "--type", "order.fulfilled",
			"--idempotency-key", "order-1001-fulfilled", "--ordering-key", "order-1001"},
			stdin: `{"order_id": 1001, "tracking": "1Z999"}`, keep: map[string]string{"evt": "evt_"}},
		{name: "events-send-again", args: []string{"events", "send", "--org", "{org}", "--type", "order.fulfilled",
			"--idempotency-key", "order-1001-fulfilled"}, stdin: `{"order_id": 1001}`},
		{name: "events-send-not-json", args: []string{"events", "send", "--org", "{org}", "--type", "order.fulfilled"}, stdin: `{"order_id":`, code: 2},
		{name: "events-send-schema", args: []string{"events", "send", "--org", "{org}", "--type", "return.approved"}, stdin: `{}`, code: 1},
		{name: "events-list", args: []string{"events", "list", "--org", "{org}"}, wait: delivered(2)},
		{name: "events-get", args: []string{"events", "get", "--org", "{org}", "{evt}"}},
		{name: "events-list-search", args: []string{"events", "list", "--org", "{org}", "--search", "1001"}},
		{name: "events-list-search-none", args: []string{"events", "list", "--org", "{org}", "--search", "1002"}},

		{name: "deliveries-list", args: []string{"deliveries", "list", "--org", "{org}", "--event", "{evt}"}, keep: map[string]string{"dlv": "dlv_"}},
		{name: "deliveries-show", args: []string{"deliveries", "show", "--org", "{org}", "{dlv}"}},
		{name: "deliveries-list-search", args: []string{"deliveries", "list", "--org", "{org}", "--search", "1001", "--status", "succeeded"}},
		{name: "deliveries-list-bad-status", args: []string{"deliveries", "list", "--org", "{org}", "--status", "lost"}, code: 1},
		{name: "endpoints-recover", args: []string{"endpoints", "recover", "--org", "{org}", "{ep}", "--since", "1h"}},

		// Onport: the vendor's reply and what it names, kept on the delivery and shown.
		{name: "endpoints-create-response-fields", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/vendor",
			"--topic", "purchase_order.created", "--payload-format", "raw", "--from-file", "-"},
			stdin: `{"response_reference_pointer": "/vendorReference", "response_fields": {"reference": "/vendorReference", "id": "/data/id"}}`,
			keep:  map[string]string{"ep3": "ep_"}},
		// ReadyCloud-style: token auth shows the token and no signing secret (nothing is signed).
		{name: "endpoints-create-token", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/orders/v2/",
			"--topic", "order.*", "--method", "PUT", "--payload-format", "raw", "--from-file", "-"},
			stdin: `{"auth": {"type": "token", "token": "a3f7f07de894cd3c2f7f50248ccbd4"}, "success_statuses": [200]}`},
		// A filter from the flag (shown compacted), from a file, and one refused.
		{name: "endpoints-create-filter", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/po-only",
			"--topic", "purchase_order.created", "--filter", `{"payload": {"reference": {"$prefix": "PO-"}}}`}},
		{name: "endpoints-create-filter-file", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/eu-only",
			"--topic", "purchase_order.created", "--filter", "@-"}, stdin: "{\"payload\": {\"country\": {\"$in\": [\"DE\", \"FR\"]}}}\n"},
		{name: "endpoints-create-filter-invalid", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/bad",
			"--topic", "purchase_order.created", "--filter", `{"payload": {"total": {"$gtt": 5}}}`}, code: 1},
		{name: "endpoints-create-filter-not-json", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/bad",
			"--topic", "purchase_order.created", "--filter", `{"payload": `}, code: 2},
		// A transformation from a file (standard input here), one refused, and its removal.
		{name: "endpoints-create-transformation", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/renamed",
			"--topic", "purchase_order.created", "--transformation-file", "-"},
			stdin: "function handler(webhook) {\n  webhook.payload = {po: webhook.payload.reference};\n  return webhook;\n}\n",
			keep:  map[string]string{"ep4": "ep_"}},
		{name: "endpoints-create-transformation-invalid", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/bad",
			"--topic", "purchase_order.created", "--transformation-file", "-"}, stdin: "function handler(webhook) {", code: 1},
		{name: "endpoints-transformation-test", args: []string{"endpoints", "transformation-test", "--org", "{org}", "{ep4}",
			"--type", "purchase_order.created", "--file", "-"}, stdin: `{"reference": "PO-77", "total": 12}`},
		{name: "endpoints-transformation-test-code", args: []string{"endpoints", "transformation-test", "--org", "{org}", "{ep4}",
			"--type", "purchase_order.created", "--code-file", "-"}, stdin: "function handler(w) { throw new Error(\"no reference\") }", code: 1},
		{name: "endpoints-update-payload-version", args: []string{"endpoints", "update", "--org", "{org}", "{ep4}", "--payload-version", "2026-06-01"}},
		{name: "endpoints-update-transformation-remove", args: []string{"endpoints", "update", "--org", "{org}", "{ep4}",
			"--transformation-file", "-", "--json"}, stdin: "", json: true},
		// OAuth 2.0 and a GitHub-style signature from flags: the client secret comes back masked.
		{name: "endpoints-create-oauth2", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/partner",
			"--topic", "product.*", "--auth", "oauth2", "--token-url", rcv.srv.URL + "/oauth/token", "--client-id", "consign",
			"--client-secret", "cs-0123456789-abcd", "--scope", "orders:write", "--signature-scheme", "hmac-sha256",
			"--signature-header", "X-Hub-Signature-256", "--signature-prefix", "sha256="}},
		{name: "endpoints-create-basic-invalid", args: []string{"endpoints", "create", "--org", "{org}", "--url", rcv.srv.URL + "/basic",
			"--topic", "product.*", "--auth", "basic", "--auth-username", "vendor"}, code: 1},
		// Mutual TLS and a private CA from PEM files: shown as a summary, never the PEM or key.
		{name: "endpoints-create-tls", args: []string{"endpoints", "create", "--org", "{org}", "--url", "https://partner.example/hooks",
			"--topic", "product.*", "--client-cert", certFile, "--client-key", keyFile, "--ca-file", caFile}, keep: map[string]string{"ep5": "ep_"}},
		{name: "endpoints-get-tls", args: []string{"endpoints", "get", "--org", "{org}", "{ep5}"}},
		{name: "endpoints-create-tls-no-key", args: []string{"endpoints", "create", "--org", "{org}", "--url", "https://partner.example/hooks",
			"--topic", "product.*", "--client-cert", certFile}, code: 1},
		{name: "endpoints-update-tls-both", args: []string{"endpoints", "update", "--org", "{org}", "{ep5}", "--no-tls", "--ca-file", caFile}, code: 2},
		{name: "endpoints-update-ca-from-file", args: []string{"endpoints", "update", "--org", "{org}", "{ep5}", "--from-file", "-",
			"--ca-file", caFile}, stdin: `{"tls": {"client_certificate": "", "client_key": ""}}`},
		{name: "endpoints-update-no-tls", args: []string{"endpoints", "update", "--org", "{org}", "{ep5}", "--no-tls"}},
		{args: []string{"events", "send", "--org", "{org}", "--type", "purchase_order.created"}, stdin: `{"reference": "10234-01"}`},
		{args: []string{"deliveries", "list", "--org", "{org}", "--endpoint", "{ep3}", "--status", "succeeded"}, keep: map[string]string{"dlv3": "dlv_"},
			wait: func(t *testing.T, vars map[string]string) {
				require.Eventually(t, func() bool {
					p, err := c.Deliveries.List(t.Context(), vars["org"], &client.DeliveryListOptions{EndpointID: vars["ep3"], Status: client.StatusSucceeded})
					return err == nil && len(p.Data) == 1
				}, 10*time.Second, 10*time.Millisecond)
			}},
		{name: "deliveries-show-response", args: []string{"deliveries", "show", "--org", "{org}", "{dlv3}"}},
		// The endpoint had the one purchase order of the window: the replay creates nothing.
		{name: "endpoints-replay", args: []string{"endpoints", "replay", "--org", "{org}", "--endpoint", "{ep3}", "--since", "1h",
			"--types", "purchase_order.created", "--wait"}, keep: map[string]string{"job": "job_"}},
		{name: "endpoints-replay-invalid", args: []string{"endpoints", "replay", "--org", "{org}", "--endpoint", "{ep3}", "--since", "1h",
			"--types", "order.teleported"}, code: 1},
		{name: "jobs-list", args: []string{"jobs", "list", "--org", "{org}", "--endpoint", "{ep3}"}},
		{name: "jobs-get", args: []string{"jobs", "get", "--org", "{org}", "{job}"}},
		{name: "jobs-cancel-finished", args: []string{"jobs", "cancel", "--org", "{org}", "{job}"}, code: 1},

		{name: "sources-create", args: []string{"sources", "create", "--org", "{org}", "--name", "Deposco shipments", "--topic", "shipment.created",
			"--verify", "header-token", "--header", "X-Token", "--secret", "token-0123456789", "--dedupe-pointer", "/shipment_id"},
			keep: map[string]string{"src": "src_"}},
		{name: "sources-create-poll", args: []string{"sources", "create", "--org", "{org}", "--name", "Deposco sync", "--topic", "shipment.created",
			"--dedupe-pointer", "/id", "--from-file", "-"},
			stdin: `{"poll": {"url": "` + rcv.srv.URL + `/shipments?since={since}&until={until}", "id_pointer": "/id", "items_pointer": "/shipments",
				"next_pointer": "/next", "cron": "0 0 1 1 *"}}`},
		{name: "sources-create-nats", args: []string{"sources", "create", "--org", "{org}", "--name", "Warehouse orders", "--topic", "order.created",
			"--nats", "nats://orders:correct-horse-battery@127.0.0.1:4222", "--subject", "warehouse.orders", "--durable", "warehouse", "--type-header", "X-Event-Type"}},
		{name: "sources-create-nats-tls", args: []string{"sources", "create", "--org", "{org}", "--name", "Partner orders", "--topic", "order.created",
			"--nats", "tls://orders:correct-horse-battery@127.0.0.1:4222", "--subject", "partner.orders", "--durable", "partner",
			"--broker-ca-file", caFile, "--broker-client-cert", certFile, "--broker-client-key", keyFile}},
		{name: "sources-create-tls-no-broker", args: []string{"sources", "create", "--org", "{org}", "--name", "Partner orders", "--topic", "order.created",
			"--broker-ca-file", caFile}, code: 2},
		{name: "sources-create-kafka-invalid", args: []string{"sources", "create", "--org", "{org}", "--name", "Warehouse orders", "--topic", "order.created",
			"--kafka", "k1.example.com", "--kafka-topic", "orders"}, code: 1},
		{name: "sources-create-invalid", args: []string{"sources", "create", "--org", "{org}", "--name", "x", "--topic", "consign.x",
			"--verify", "hmac-sha256"}, code: 1},
		{name: "sources-list", args: []string{"sources", "list", "--org", "{org}"}},
		{name: "sources-receipts", args: []string{"sources", "receipts", "--org", "{org}", "{src}", "--no-verified"},
			wait: func(t *testing.T, vars map[string]string) {
				src, err := c.Sources.Get(t.Context(), vars["org"], vars["src"])
				require.NoError(t, err)
				resp, err := http.Post(src.IngestURL, "application/json", strings.NewReader(`{"shipment_id":"shp_1"}`))
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			}},
		{name: "sources-delete", args: []string{"sources", "delete", "--org", "{org}", "{src}"}},

		{name: "endpoints-delete", args: []string{"endpoints", "delete", "--org", "{org}", "{ep2}"}},
		{name: "orgs-delete", args: []string{"orgs", "delete", "{org2}"}},
	}
	vars := map[string]string{}
	for _, st := range steps {
		if st.wait != nil {
			st.wait(t, vars)
		}
		args := make([]string, len(st.args))
		for i, a := range st.args {
			for k, v := range vars {
				a = strings.ReplaceAll(a, "{"+k+"}", v)
			}
			args[i] = a
		}
		r := s.run(t, st.stdin, args...)
		require.Equal(t, st.code, r.code, "consign %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
		for name, prefix := range st.keep {
			m := regexp.MustCompile(`\b` + prefix + `[0-9A-Z]{26}\b`).FindString(r.stdout)
			require.NotEmpty(t, m, "no %s id in %q", prefix, r.stdout)
			vars[name] = m
		}
		if st.json {
			r.stdout = indentJSON(t, r.stdout)
		}
		if st.name != "" {
			out := normalize(strings.ReplaceAll(transcript(args, r), dir, "$TMP"))
			if !st.json {
				out = realign(out)
			}
			golden(t, st.name, out)
		}
		// Objects made in one millisecond have ids in random order; keep lists stable.
		time.Sleep(2 * time.Millisecond)
	}

	// The retried delivery goes again.
	before := rcv.count()
	r := s.run(t, "", "deliveries", "retry", "--org", vars["org"], vars["dlv"])
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "pending")
	require.Eventually(t, func() bool { return rcv.count() > before }, 10*time.Second, 10*time.Millisecond)

	r = s.run(t, "", "endpoints", "stats", "--org", vars["org"], vars["ep"], "--window", "1h")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^attempts\s+\d+$`, r.stdout)
	require.Regexp(t, `(?m)^success_rate\s+100\.0%$`, r.stdout)

	r = s.run(t, "", "event-types", "list")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `(?m)^NAME\s+BUILTIN\s+SCHEMA\s+FOR\s+DESCRIPTION$`, r.stdout)
	require.Regexp(t, `(?m)^return\.approved\s+false\s+true\s+all\s+A return was approved\.$`, r.stdout)
	require.Regexp(t, `(?m)^order\.fulfilled\s+true\s+true\s+buyer\s+`, r.stdout) // a Modern Dropship topic: it has a schema
}

// writeTLSFiles writes a partner CA ("Partner Root CA") and a client certificate it
// signed ("consign-client", valid a year) with its key, as PEM files in dir.
func writeTLSFiles(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Partner Root CA", Organization: []string{"Partner"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "consign-client", Organization: []string{"Acme Outdoor"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for file, b := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(b), 0o600))
	}
	return caFile, certFile, keyFile
}

// TestJSONIsTheAPIs checks that --json prints the API's reply byte for byte.
func TestJSONIsTheAPIs(t *testing.T) {
	t.Parallel()
	s := start(t)
	rcv := newReceiver(t)
	var org struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(s.ok(t, "", "orgs", "create", "Acme", "--json")), &org))
	s.ok(t, "", "endpoints", "create", "--org", org.ID, "--url", rcv.srv.URL, "--topic", "*")
	s.ok(t, `{"a":1}`, "events", "send", "--org", org.ID, "--type", "order.created", "--ordering-key", "k")

	for _, tt := range []struct {
		args []string
		path string
	}{
		{[]string{"orgs", "list"}, "/v1/orgs"},
		{[]string{"orgs", "get", org.ID}, "/v1/orgs/" + org.ID},
		{[]string{"endpoints", "list", "--org", org.ID}, "/v1/orgs/" + org.ID + "/endpoints"},
		{[]string{"events", "list", "--org", org.ID, "--limit", "5"}, "/v1/orgs/" + org.ID + "/events?limit=5"},
		{[]string{"event-types", "list"}, "/v1/event-types"},
	} {
		got := s.ok(t, "", append(tt.args, "--json")...)
		require.Equal(t, apiGet(t, s.url+tt.path), got, "consign %s --json", strings.Join(tt.args, " "))
	}
}

// apiGet returns the body of an API reply.
func apiGet(tb testing.TB, url string) string {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, url, nil)
	require.NoError(tb, err)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

func TestPagesAndErrors(t *testing.T) {
	t.Parallel()
	s := start(t)
	var ids []string
	for i := range 3 {
		var o struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(s.ok(t, "", "orgs", "create", "org "+strconv.Itoa(i), "--json")), &o))
		ids = append(ids, o.ID)
		time.Sleep(2 * time.Millisecond)
	}
	// Newest first, one page at a time; the next page's cursor goes to stderr.
	r := s.run(t, "", "orgs", "list", "--limit", "2")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, ids[2])
	require.Contains(t, r.stdout, ids[1])
	require.NotContains(t, r.stdout, ids[0])
	require.Equal(t, "more: add --cursor "+ids[1]+"\n", r.stderr)
	r = s.run(t, "", "orgs", "list", "--limit", "2", "--cursor", ids[1])
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, ids[0])
	require.Empty(t, r.stderr)

	// Errors: the problem's detail on stderr, exit 1.
	r = s.run(t, "", "orgs", "list", "--limit", "501")
	require.Equal(t, 1, r.code)
	require.Equal(t, "consign: limit: must be a whole number from 1 to 500 (422 Unprocessable Entity)\n", r.stderr)
	require.Empty(t, r.stdout)

	r = runCLI(t, "", "orgs", "list", "--server", s.url, "--key", "wrong")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "(401 Unauthorized)")

	// Usage errors exit 2.
	r = runCLI(t, "", "orgs", "list", "--server", s.url, "--key", "")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "no API key: set CONSIGN_KEY or pass --key")
	r = runCLI(t, "", "orgs", "list", "--server", "localhost:8700", "--key", adminKey)
	require.Equal(t, 2, r.code)
	r = s.run(t, "", "endpoints", "list")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--org")

	// A server that is not there.
	r = runCLI(t, "", "orgs", "list", "--server", "http://127.0.0.1:1", "--key", adminKey)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "connection refused")
	require.Contains(t, r.stderr, "is the server running?")
	require.NotContains(t, r.stderr, "consign: consign:")
}

// TestEnvironment reads the server, key and org from CONSIGN_URL, CONSIGN_KEY and
// CONSIGN_ORG. It cannot run in parallel: it sets the process environment.
func TestEnvironment(t *testing.T) {
	s := start(t)
	t.Setenv("CONSIGN_URL", s.url)
	t.Setenv("CONSIGN_KEY", adminKey)
	r := runCLI(t, "", "orgs", "create", "Acme", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var o struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &o))
	t.Setenv("CONSIGN_ORG", o.ID)
	r = runCLI(t, "", "endpoints", "list")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "ID  ACTIVE  HEALTH  TOPICS  URL\n", r.stdout)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	other := "whsec_" + strings.Repeat("A", 32)
	body := `{"type":"order.fulfilled"}`
	now := time.Now()
	sig, err := webhook.Sign(secret, "evt_1", now, []byte(body))
	require.NoError(t, err)
	headers := []string{"-H", "webhook-id: evt_1", "-H", "webhook-timestamp: " + strconv.FormatInt(now.Unix(), 10), "-H", "webhook-signature: " + sig}

	r := runCLI(t, body, append([]string{"verify", "--secret", secret}, headers...)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "valid\n", r.stdout)

	r = runCLI(t, body, append([]string{"verify", "--secret", other, "--secret", secret}, headers...)...)
	require.Equal(t, 0, r.code, "any of several secrets: %s", r.stderr)

	r = runCLI(t, body+" ", append([]string{"verify", "--secret", secret}, headers...)...)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "invalid: webhook: no matching signature")

	r = runCLI(t, body, "verify", "--secret", secret, "-H", "webhook-id: evt_1")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "webhook-timestamp")

	r = runCLI(t, body, append([]string{"verify", "--secret", "whsec_!!"}, headers...)...)
	require.Equal(t, 2, r.code, "a malformed secret is a usage error")

	r = runCLI(t, body, "verify", "--secret", secret, "-H", "webhook-id")
	require.Equal(t, 2, r.code)
}
