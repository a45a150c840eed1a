package consign_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

func TestMaskURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:••••@127.0.0.1:5672/"},
		{"amqp://consign:correct-horse-battery@rabbit.example.com/orders", "amqp://consign:••••tery@rabbit.example.com/orders"},
		{"nats://s3cr3t-token-value@nats.example.com:4222", "nats://••••alue@nats.example.com:4222"},
		{"nats://nats.example.com:4222", "nats://nats.example.com:4222"},
		{"amqps://us%40er:p%40ss@h/", "amqps://us%40er:••••@h/"},
		{"not a url ::", "not a url ::"},
		{"kafka+tls://consign:s3cret-pass@a.example.com:9093,b.example.com:9093/orders?sasl=plain",
			"kafka+tls://consign:••••@a.example.com:9093,b.example.com:9093/orders?sasl=plain"},
		{"rediss://:redis-password@redis.example.com/0?stream=s", "rediss://:••••word@redis.example.com/0?stream=s"},
	} {
		require.Equal(t, tt.want, consign.MaskURL(tt.in), tt.in)
	}
}

// TestURLPassword: the password of a broker URL (a list of hosts too) is taken out for
// sealing, the URL without it names the user, and putting it back gives the URL again.
func TestURLPassword(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, pass, without string }{
		{"kafka+tls://consign:s3cret@a:9093,b:9093/orders?sasl=scram-sha-512", "s3cret", "kafka+tls://consign@a:9093,b:9093/orders?sasl=scram-sha-512"},
		{"amqps://guest:p%40ss@h:5671/?routing_key=q", "p@ss", "amqps://guest@h:5671/?routing_key=q"},
		{"rediss://:pw@h/0?stream=s", "pw", "rediss://@h/0?stream=s"},
	} {
		pass, without, ok := consign.URLPassword(tt.in)
		require.True(t, ok, tt.in)
		require.Equal(t, tt.pass, pass)
		require.Equal(t, tt.without, without)
		require.Equal(t, tt.in, consign.WithURLPassword(without, pass))
	}
}

func TestSourceFromNormalize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		from   consign.SourceFrom
		fields []string
		want   consign.SourceFrom
	}{
		{"nats defaults the durable", consign.SourceFrom{Type: "nats", URL: " nats://h:4222 ", Subject: "orders.>"}, nil,
			consign.SourceFrom{Type: "nats", URL: "nats://h:4222", Subject: "orders.>", Durable: "consign_src_1"}},
		{"nats tls", consign.SourceFrom{Type: "nats", URL: "tls://h", Subject: "a", Durable: "d"}, nil,
			consign.SourceFrom{Type: "nats", URL: "tls://h", Subject: "a", Durable: "d"}},
		{"amqp", consign.SourceFrom{Type: "amqp", URL: "amqps://u:p@h/vhost?heartbeat=10", Queue: "orders"}, nil,
			consign.SourceFrom{Type: "amqp", URL: "amqps://u:p@h/vhost?heartbeat=10", Queue: "orders"}},
		{"kafka", consign.SourceFrom{Type: "kafka", Brokers: []string{" k1:9092", "[::1]:9093"}, Topic: "orders", Group: "consign"}, nil,
			consign.SourceFrom{Type: "kafka", Brokers: []string{"k1:9092", "[::1]:9093"}, Topic: "orders", Group: "consign"}},
		{"nats fields of others", consign.SourceFrom{Type: "nats", URL: "nats://h", Subject: "a", Queue: "q", Group: "g", Topic: "t", Brokers: []string{"k:1"}},
			[]string{"from.queue", "from.brokers", "from.topic", "from.group"}, consign.SourceFrom{}},
		{"nats bad subject and durable", consign.SourceFrom{Type: "nats", URL: "nats://h", Subject: "a b", Durable: "x>"},
			[]string{"from.subject", "from.durable"}, consign.SourceFrom{}},
		{"amqp url with fragment", consign.SourceFrom{Type: "amqp", URL: "amqp://h/#x", Queue: "q"}, []string{"from.url"}, consign.SourceFrom{}},
		{"kafka bad port", consign.SourceFrom{Type: "kafka", Brokers: []string{"k1:0"}, Topic: "t", Group: "g"}, []string{"from.brokers[0]"}, consign.SourceFrom{}},
		{"kafka too many brokers", consign.SourceFrom{Type: "kafka", Brokers: make([]string, 17), Topic: "t", Group: "g"},
			[]string{"from.brokers"}, consign.SourceFrom{}},
		{"unknown type", consign.SourceFrom{Type: "sqs"}, []string{"from.type"}, consign.SourceFrom{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.from
			s := consign.Source{ID: "src_1", Name: "n", Topic: "order.created", From: &f}
			err := s.Normalize()
			if tt.fields == nil {
				require.NoError(t, err)
				require.Equal(t, tt.want, *s.From)
				return
			}
			var v *consign.Error
			require.ErrorAs(t, err, &v)
			var got []string
			for _, fe := range v.Fields {
				if strings.HasPrefix(fe.Field, "from") {
					got = append(got, fe.Field)
				}
			}
			if tt.name == "kafka too many brokers" {
				require.Contains(t, got, "from.brokers")
				return
			}
			require.Equal(t, tt.fields, got)
		})
	}
}

// FuzzSourceFrom: any "from" a client sends is checked without a panic, and a URL's
// credential never shows whole in its masked form.
func FuzzSourceFrom(f *testing.F) {
	for _, s := range []string{
		`{"type":"nats","url":"nats://user:hunter2-long-pass@h:4222","subject":"a.>"}`,
		`{"type":"amqp","url":"amqp://guest:guest@127.0.0.1:5672/vh","queue":"q"}`,
		`{"type":"kafka","brokers":["k1:9092","[::1]:1"],"topic":"t","group":"g"}`,
		`{"type":"nats","url":"nats://tok%40en-secret-value@h","subject":"s","durable":"d"}`,
		`{"type":"amqp","url":"amqp://:@/","queue":""}`,
		`{"type":"kafka","url":"kafka+tls://consign:s3cret-pass@k1:9093,k2:9093?sasl=scram-sha-256","topic":"t","group":"g"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var from consign.SourceFrom
		if json.Unmarshal([]byte(doc), &from) != nil {
			return
		}
		s := consign.Source{ID: "src_1", Name: "n", Topic: "order.created", From: &from}
		_ = s.Normalize()
		_ = from.BrokerHosts()
		out := consign.MaskURL(from.URL)
		// The password URLPassword takes out for sealing (a list of hosts too) never
		// shows whole in the masked URL.
		if p, _, ok := consign.URLPassword(from.URL); ok && len(p) >= 5 && strings.Count(from.URL, p) <= 1 && strings.Contains(out, p) {
			t.Fatalf("MaskURL(%q) = %q shows the password %q", from.URL, out, p)
		}
		u, err := url.Parse(from.URL)
		if err != nil || u.User == nil {
			return
		}
		secret, ok := u.User.Password()
		if !ok {
			secret = u.User.Username()
		}
		rest := strings.Replace(from.URL, secret, "", 1)
		if len(secret) >= 5 && strings.Contains(out, secret) && !strings.Contains(rest, secret) &&
			!strings.Contains(u.Host+u.Path+u.RawQuery+u.User.Username(), secret) {
			t.Fatalf("MaskURL(%q) = %q shows the credential %q", from.URL, out, secret)
		}
	})
}
