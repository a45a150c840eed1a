package app_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/app"
	"github.com/consign-dev/consign/internal/store/postgres/pgtest"
)

// TestConfiguredCredentialsNeverShown: an endpoint's header values and a source's poll
// header values, whatever the headers are called, are sent as given but never stored in
// clear (the SQLite files, every PostgreSQL table) and never shown again: API replies,
// the attempt log and the dashboard show them masked, and a PATCH that sends a masked
// value back keeps the stored one.
func TestConfiguredCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) (*env, func(t *testing.T, secret string) int)
	}{
		{"sqlite", func(t *testing.T) (*env, func(*testing.T, string) int) {
			e := start(t)
			return e, func(t *testing.T, secret string) int { return filesContaining(t, e.dir, secret) }
		}},
		{"postgres", func(t *testing.T) (*env, func(*testing.T, string) int) {
			dsn := pgtest.DSN(t)
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
			e := start(t, func(c *app.Config) { c.Database, c.EncryptionKey = dsn, key })
			return e, func(t *testing.T, secret string) int { return rowsContaining(t, dsn, secret) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, stored := tc.start(t)
			partnerKey, bearer, pollKey, newKey, brokerPass, destPass := credential(), credential(), credential(), credential(), credential(), credential()
			kafkaPass, kafkaSourcePass := credential(), credential()
			secrets := []string{partnerKey, bearer, pollKey, newKey, brokerPass, destPass, kafkaPass, kafkaSourcePass}
			rc := newReceiver(t, nil)
			o := e.newOrg("acme")
			base := "/v1/orgs/" + o.id

			created := e.createEndpoint(o, map[string]any{"url": rc.URL + "/hooks", "topics": []string{"order.*"},
				"headers": map[string]string{"X-Partner-Key": partnerKey, "Authorization": "Bearer " + bearer, "X-Tenant": "acme"}})
			id := created["id"].(string)
			want := map[string]any{"X-Partner-Key": consign.MaskPrefix + partnerKey[len(partnerKey)-4:],
				"Authorization": consign.MaskPrefix + bearer[len(bearer)-4:], "X-Tenant": consign.MaskPrefix}
			require.Equal(t, want, created["headers"], "the creation reply")
			dest := e.createEndpoint(o, map[string]any{"url": "amqp://consign:" + destPass + "@broker.invalid:5672/?exchange=&routing_key=orders",
				"topics": []string{"order.*"}})
			require.Equal(t, "amqp://consign:"+consign.MaskPrefix+destPass[len(destPass)-4:]+"@broker.invalid:5672/?exchange=&routing_key=orders", dest["url"],
				"a broker endpoint's password is masked")
			require.NotContains(t, e.c.raw("GET", base+"/endpoints/"+dest["id"].(string), nil, o.key, nil).String(), destPass)
			// A Kafka URL with SASL credentials and a list of brokers, over TLS.
			kafka := e.createEndpoint(o, map[string]any{"url": "kafka+tls://consign:" + kafkaPass + "@k1.invalid:9093,k2.invalid:9093/orders?sasl=scram-sha-512",
				"topics": []string{"order.*"}})
			require.Equal(t, "kafka+tls://consign:"+consign.MaskPrefix+kafkaPass[len(kafkaPass)-4:]+"@k1.invalid:9093,k2.invalid:9093/orders?sasl=scram-sha-512",
				kafka["url"], "a Kafka endpoint's SASL password is masked")
			require.NotContains(t, e.c.raw("GET", base+"/endpoints/"+kafka["id"].(string), nil, o.key, nil).String(), kafkaPass)
			src := e.c.must(http.StatusCreated, "POST", base+"/sources", map[string]any{"name": "deposco", "topic": "shipment.created",
				"poll": map[string]any{"url": "https://poll.invalid/shipments", "id_pointer": "/id", "interval": "24h",
					"headers": map[string]string{"X-Poll-Key": pollKey}}}, o.key)
			broker := e.c.must(http.StatusCreated, "POST", base+"/sources", map[string]any{"name": "warehouse", "topic": "order.created",
				"from": map[string]any{"type": "amqp", "url": "amqp://consign:" + brokerPass + "@broker.invalid:5672/", "queue": "orders"}}, o.key)
			brokerID := broker["id"].(string)
			require.Equal(t, "amqp://consign:"+consign.MaskPrefix+brokerPass[len(brokerPass)-4:]+"@broker.invalid:5672/",
				broker["from"].(map[string]any)["url"], "the broker URL's password is masked")
			kafkaSrc := e.c.must(http.StatusCreated, "POST", base+"/sources", map[string]any{"name": "kafka", "topic": "order.created",
				"from": map[string]any{"type": "kafka", "url": "kafka+tls://consign:" + kafkaSourcePass + "@k1.invalid:9093,k2.invalid:9093?sasl=plain",
					"topic": "orders", "group": "consign"}}, o.key)
			require.Equal(t, "kafka+tls://consign:"+consign.MaskPrefix+kafkaSourcePass[len(kafkaSourcePass)-4:]+"@k1.invalid:9093,k2.invalid:9093?sasl=plain",
				kafkaSrc["from"].(map[string]any)["url"], "a Kafka source's SASL password is masked")

			e.publish(o, "order.created", map[string]any{"n": 1})
			got := rc.next(t)
			require.Equal(t, partnerKey, got.Header.Get("X-Partner-Key"), "sent as given")
			require.Equal(t, "Bearer "+bearer, got.Header.Get("Authorization"))

			// Sending back what GET showed, with another change, keeps every value.
			var ep map[string]any
			e.c.get(base+"/endpoints/"+id, o.key, &ep)
			require.Equal(t, want, ep["headers"], "GET")
			patched := e.c.must(http.StatusOK, "PATCH", base+"/endpoints/"+id,
				map[string]any{"headers": ep["headers"], "description": "masked values sent back"}, o.key)
			require.Equal(t, want, patched["headers"], "the PATCH reply")
			e.publish(o, "order.created", map[string]any{"n": 2})
			got = rc.next(t)
			require.Equal(t, partnerKey, got.Header.Get("X-Partner-Key"), "a masked value sent back keeps the stored one")
			require.Equal(t, "Bearer "+bearer, got.Header.Get("Authorization"))
			require.Equal(t, "acme", got.Header.Get("X-Tenant"))
			// A new value replaces it.
			e.c.must(http.StatusOK, "PATCH", base+"/endpoints/"+id, map[string]any{"headers": map[string]string{"X-Partner-Key": newKey}}, o.key)
			e.publish(o, "order.created", map[string]any{"n": 3})
			require.Equal(t, newKey, rc.next(t).Header.Get("X-Partner-Key"))

			ds := e.deliveries(o, "endpoint_id="+id)
			require.Len(t, ds, 3)
			d := e.waitStatus(o, ds[0].ID, consign.StatusSucceeded)
			require.Equal(t, consign.MaskPrefix+newKey[len(newKey)-4:], d.Attempts[0].Request.Headers["X-Partner-Key"], "the attempt log")

			replies := []string{
				e.c.raw("GET", base+"/endpoints", nil, o.key, nil).String(),
				e.c.raw("GET", base+"/endpoints/"+id, nil, o.key, nil).String(),
				e.c.raw("GET", base+"/sources", nil, o.key, nil).String(),
				e.c.raw("GET", base+"/sources/"+src["id"].(string), nil, o.key, nil).String(),
				e.c.raw("GET", base+"/sources/"+brokerID, nil, o.key, nil).String(),
				e.c.raw("POST", base+"/endpoints/"+id+"/test", map[string]any{"type": "order.created"}, o.key, nil).String(),
			}
			for _, dl := range ds {
				replies = append(replies, e.c.raw("GET", base+"/deliveries/"+dl.ID, nil, o.key, nil).String())
			}
			b := signIn(t, e, o.key)
			for _, p := range []string{"sources/" + brokerID, "endpoints", "endpoints/" + id, "endpoints/" + id + "/edit", "deliveries/" + ds[0].ID,
				"deliveries/" + ds[2].ID, "sources/" + src["id"].(string)} {
				replies = append(replies, b.page(t, "/ui/orgs/"+o.id+"/"+p))
			}
			for i, r := range replies {
				for _, s := range secrets {
					require.NotContains(t, r, s, "reply %d shows a credential", i)
				}
			}
			require.Contains(t, replies[len(replies)-4], consign.MaskPrefix, "the edit form shows the values masked")

			for _, s := range secrets {
				require.Zero(t, stored(t, s), "a credential stored in clear")
			}
		})
	}
}

// credential is a random value, unlikely to be anywhere by chance.
func credential() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "cred_" + hex.EncodeToString(b)
}

// String is the reply's body as text.
func (r *reply) String() string { return string(r.body) }

// filesContaining counts the files under dir (the store, its log, anything else) that
// hold s.
func filesContaining(t *testing.T, dir, s string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			t.Logf("%s holds %q", path, s)
			n++
		}
		return nil
	}))
	return n
}

// rowsContaining counts the rows of every table of the database whose text holds s.
func rowsContaining(t *testing.T, dsn, s string) int {
	t.Helper()
	db, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer db.Close(t.Context())
	tables, err := db.Query(t.Context(), `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(tables, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, names, "endpoints")
	n := 0
	for _, name := range names {
		var c int
		require.NoError(t, db.QueryRow(t.Context(), `SELECT count(*) FROM `+name+` x WHERE x::text LIKE '%' || $1 || '%'`, s).Scan(&c))
		if c > 0 {
			t.Logf("table %s holds %q in %d rows", name, s, c)
		}
		n += c
	}
	return n
}

// dashboard is a browser signed in to the dashboard.
type dashboard struct {
	base string
	hc   *http.Client
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs a browser in to the dashboard with key.
func signIn(t *testing.T, e *env, key string) *dashboard {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &dashboard{base: e.app.URL(), hc: &http.Client{Jar: jar}}
	form := b.page(t, "/ui/signin")
	m := csrfInput.FindStringSubmatch(form)
	require.NotNil(t, m, form)
	res, err := b.hc.PostForm(b.base+"/ui/signin", url.Values{"csrf": {m[1]}, "key": {key}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	return b
}

// page returns a dashboard page's HTML.
func (b *dashboard) page(t *testing.T, path string) string {
	t.Helper()
	res, err := b.hc.Get(b.base + path)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, body)
	return string(body)
}
