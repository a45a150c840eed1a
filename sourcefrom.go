package consign

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Brokers a source may read from (SourceFrom.Type). A message's receipt has the broker's
// name as its Via.
const (
	FromNATS  = "nats"  // a JetStream durable pull consumer on a subject
	FromAMQP  = "amqp"  // an AMQP 0-9-1 queue (RabbitMQ), manual acks
	FromKafka = "kafka" // a Kafka topic read by a consumer group, offsets committed by hand
)

// Limits of a source's broker settings.
const (
	MaxFromBrokers = 16
	maxFromName    = 255
)

// SourceFrom is a broker a source reads messages from, besides its ingest URL. Each
// message becomes a receipt and an event exactly as a webhook would; it is acknowledged
// to the broker only once its receipt is durable.
//
// NATS: URL (tls://, or nats:// for plaintext; credentials as user:pass@ or token@),
// Subject (a JetStream stream must hold it) and Durable, the durable consumer's name
// (default "consign_" and the source id; an existing durable is used as it is). AMQP:
// URL (amqps://, or amqp:// for plaintext; user:pass@host:port/vhost) and Queue, which
// must exist. Kafka: URL (kafka+tls://[user:pass@]host:9093[,host…][?sasl=mechanism],
// or kafka:// for plaintext) or Brokers (host:port, plaintext), Topic and Group, the
// consumer group whose committed offsets say where reading resumes. A new durable or
// group starts at the oldest message the broker keeps. Plaintext is for development:
// the service refuses it without --insecure-targets.
type SourceFrom struct {
	Type string `json:"type"`
	// URL of a NATS server, an AMQP broker or Kafka brokers. Its credentials are sealed
	// at rest and masked in replies; a masked URL sent back keeps the stored one.
	URL     string   `json:"url,omitempty" doc:"the broker: tls://[user:pass@]host:4222 (NATS), amqps://user:pass@host:5671/<vhost> (AMQP), kafka+tls://[user:pass@]host:9093[,host…][?sasl=plain|scram-sha-256|scram-sha-512] (Kafka); certificates verified against the system roots; plaintext nats://, amqp://, kafka:// only with --insecure-targets; a password in it is stored sealed and shown masked"`
	Subject string   `json:"subject,omitempty"`
	Durable string   `json:"durable,omitempty"`
	Queue   string   `json:"queue,omitempty"`
	Brokers []string `json:"brokers,omitempty" doc:"Kafka brokers as host:port, in plaintext: only with --insecure-targets (else give url kafka+tls://…)"`
	Topic   string   `json:"topic,omitempty"`
	Group   string   `json:"group,omitempty"`
	// TLS is the source's own TLS settings (nil: the system roots, no client
	// certificate).
	TLS *FromTLS `json:"tls,omitempty" doc:"the source's own TLS settings, as an endpoint's tls: ca_certificates (PEM) trusted instead of the system roots for this broker, client_certificate and client_key (PEM) for mutual TLS; the key is stored sealed; replies show subject, issuer, not_after and ca_subjects instead of the PEM documents, and a tls sent back as shown keeps the stored settings"`
}

// Storable returns a copy of f as a store keeps it in clear: the URL without its
// credentials and the TLS settings without the client key (both are sealed apart), nor
// what replies show of them.
func (f *SourceFrom) Storable() *SourceFrom {
	out := *f
	out.URL = URLWithoutCredentials(f.URL)
	if f.TLS != nil {
		out.TLS = &FromTLS{TLSInput: TLSInput{ClientCertificate: f.TLS.ClientCertificate, CACertificates: f.TLS.CACertificates}}
	}
	return &out
}

// Shown returns a copy of f fit for a reply: the URL's credentials masked (MaskURL), of
// the TLS settings what FromTLS.Shown keeps.
func (f *SourceFrom) Shown() *SourceFrom {
	out := *f
	out.URL = MaskURL(f.URL)
	if f.TLS != nil {
		out.TLS = f.TLS.Shown()
	}
	return &out
}

// FromTLS is a broker source's own TLS settings, given as an endpoint's are (TLSInput:
// the broker's CA certificates, trusted instead of the system roots for this source
// alone, and a client certificate and its key for mutual TLS). Replies show only what
// Shown keeps: the certificates' subjects, issuer and expiry, never the PEM documents,
// and the key is sealed at rest.
type FromTLS struct {
	TLSInput
	Subject    string     `json:"subject,omitempty"`
	Issuer     string     `json:"issuer,omitempty"`
	NotAfter   *time.Time `json:"not_after,omitempty"`
	CASubjects []string   `json:"ca_subjects,omitempty"`
}

// Check checks t against now, adding each problem to v as a field error under
// "from.tls.".
func (t *FromTLS) Check(v *Validation, now time.Time) {
	if t.TLSInput == (TLSInput{}) {
		v.Add("from.tls", "gives no client_certificate, client_key or ca_certificates: leave tls out for none")
		return
	}
	parseTLS(v, "from.tls.", t.TLSInput, now)
}

// Shown returns what a reply shows of t: the subject, issuer and expiry of its client
// certificate and the subjects of its CAs (t itself, copied, when it has no PEM
// document: it is shown already).
func (t *FromTLS) Shown() *FromTLS {
	if t.TLSInput == (TLSInput{}) {
		c := *t
		return &c
	}
	e := EndpointTLS{ClientCertificate: t.ClientCertificate, CACertificates: t.CACertificates}
	e.Summarize()
	return &FromTLS{Subject: e.Subject, Issuer: e.Issuer, NotAfter: e.NotAfter, CASubjects: e.CASubjects}
}

// AsShown reports whether t is what a reply showed (no PEM document): sent back in an
// update, it keeps the stored settings.
func (t *FromTLS) AsShown() bool {
	return t.TLSInput == (TLSInput{}) && (t.Subject != "" || len(t.CASubjects) > 0)
}

// FromStatus is how the consumer of a source's broker is doing, as seen by the node that
// answers (every node runs one; the broker shares the messages among them).
type FromStatus struct {
	// Connected is true while the consumer is attached to the broker.
	Connected bool `json:"connected"`
	// ConnectedAt is when it last attached.
	ConnectedAt *time.Time `json:"connected_at"`
	// LastMessageAt is when the last message was made a durable receipt.
	LastMessageAt *time.Time `json:"last_message_at"`
	// Messages counts the messages made receipts since this node started consuming.
	Messages int64 `json:"messages"`
	// Lag is how many messages wait in the broker for this consumer (NATS: pending for
	// the durable; AMQP: ready in the queue; Kafka: behind the high watermark of the
	// partitions this node reads); nil until known.
	Lag *int64 `json:"lag"`
	// LastError says why the consumer last failed or stopped ("" when it never did);
	// LastErrorAt is when.
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
}

// Position headers: where a message was in its broker, stored with its receipt's
// headers.
const (
	HeaderNATSStream     = "Consign-Nats-Stream"
	HeaderNATSSequence   = "Consign-Nats-Sequence"
	HeaderAMQPDelivery   = "Consign-Amqp-Delivery-Tag"
	HeaderKafkaTopic     = "Consign-Kafka-Topic"
	HeaderKafkaPartition = "Consign-Kafka-Partition"
	HeaderKafkaOffset    = "Consign-Kafka-Offset"
)

// DefaultDurable is the NATS durable consumer name a source uses when it names none.
func DefaultDurable(sourceID string) string { return "consign_" + sourceID }

// normalize checks a source's broker settings; insecure-target rules are the caller's.
func (f *SourceFrom) normalize(v *Validation, sourceID string) {
	name := func(field, val string, required bool, bad string) string {
		val = strings.TrimSpace(val)
		switch {
		case val == "" && required:
			v.Add("from."+field, "is required")
		case len(val) > maxFromName:
			v.Add("from."+field, "must be at most %d characters", maxFromName)
		case strings.ContainsAny(val, bad):
			v.Add("from."+field, "must not contain any of %q", bad)
		}
		return val
	}
	unused := func(field string, set bool) {
		if set {
			v.Add("from."+field, "is not used by %q", f.Type)
		}
	}
	switch f.Type {
	case FromNATS:
		f.URL = checkBrokerURL(v, f.URL, map[string]string{"nats": "4222", "tls": "4222"})
		f.Subject = name("subject", f.Subject, true, " \t\r\n\x00")
		f.Durable = name("durable", f.Durable, false, " \t\r\n\x00.*>/\\")
		if f.Durable == "" && sourceID != "" {
			f.Durable = DefaultDurable(sourceID)
		}
		unused("queue", f.Queue != "")
		unused("brokers", len(f.Brokers) > 0)
		unused("topic", f.Topic != "")
		unused("group", f.Group != "")
	case FromAMQP:
		f.URL = checkBrokerURL(v, f.URL, map[string]string{"amqp": "5672", "amqps": "5671"})
		f.Queue = name("queue", f.Queue, true, "\r\n\x00")
		unused("subject", f.Subject != "")
		unused("durable", f.Durable != "")
		unused("brokers", len(f.Brokers) > 0)
		unused("topic", f.Topic != "")
		unused("group", f.Group != "")
	case FromKafka:
		switch {
		case f.URL != "" && len(f.Brokers) > 0:
			v.Add("from.brokers", "is not used with from.url: give one of them")
		case f.URL != "":
			f.URL = strings.TrimSpace(f.URL)
			lower := strings.ToLower(f.URL)
			switch {
			case !strings.HasPrefix(lower, "kafka+tls://") && !strings.HasPrefix(lower, "kafka://"):
				v.Add("from.url", "must start with kafka+tls:// or kafka://")
			case len(f.URL) > 2048:
				v.Add("from.url", "must be at most 2048 characters")
			case strings.ContainsAny(f.URL, "\r\n\x00 "):
				v.Add("from.url", "must not contain spaces or control characters")
			}
		case len(f.Brokers) == 0:
			v.Add("from.brokers", `is required (or from.url): the Kafka brokers' host:port, such as ["kafka.example.com:9092"]`)
		case len(f.Brokers) > MaxFromBrokers:
			v.Add("from.brokers", "at most %d brokers", MaxFromBrokers)
		}
		for i, b := range f.Brokers {
			b = strings.TrimSpace(b)
			f.Brokers[i] = b
			if host, port, err := net.SplitHostPort(b); err != nil || host == "" || !validPort(port) {
				v.Add("from.brokers["+strconv.Itoa(i)+"]", "%q must be host:port, such as kafka.example.com:9092", b)
			}
		}
		f.Topic = name("topic", f.Topic, true, " \t\r\n\x00/\\")
		f.Group = name("group", f.Group, true, "\r\n\x00")
		unused("subject", f.Subject != "")
		unused("durable", f.Durable != "")
		unused("queue", f.Queue != "")
	default:
		v.Add("from.type", `must be "nats", "amqp" or "kafka"`)
	}
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// checkBrokerURL checks a broker URL's form: one of the schemes, a host, a valid port
// (the scheme's default is added when there is none).
func checkBrokerURL(v *Validation, raw string, schemes map[string]string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		v.Add("from.url", "is required")
		return raw
	}
	if len(raw) > 2048 {
		v.Add("from.url", "must be at most 2048 characters")
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.Add("from.url", "is not a valid URL")
		return raw
	}
	port, ok := schemes[u.Scheme]
	if !ok {
		names := make([]string, 0, len(schemes))
		for s := range schemes {
			names = append(names, s+"://")
		}
		if len(names) == 2 && names[0] > names[1] {
			names[0], names[1] = names[1], names[0]
		}
		v.Add("from.url", "must start with %s", strings.Join(names, " or "))
		return raw
	}
	if u.Hostname() == "" {
		v.Add("from.url", "must have a host, such as %s://broker.example.com:%s", u.Scheme, port)
		return raw
	}
	if p := u.Port(); p != "" && !validPort(p) {
		v.Add("from.url", "port must be between 1 and 65535")
		return raw
	}
	if u.Fragment != "" || u.RawQuery != "" && u.Scheme != "amqp" && u.Scheme != "amqps" {
		v.Add("from.url", "must not have a query or fragment")
	}
	if strings.ContainsAny(raw, "\r\n\x00 ") {
		v.Add("from.url", "must not contain spaces or control characters")
	}
	return raw
}

// BrokerHosts returns the host:port pairs a source's broker settings connect to (for a
// Kafka URL, none: the service parses it).
func (f *SourceFrom) BrokerHosts() []string {
	if f.Type == FromKafka {
		return f.Brokers
	}
	u, err := url.Parse(f.URL)
	if err != nil {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"nats": "4222", "tls": "4222", "amqp": "5672", "amqps": "5671"}[u.Scheme]
	}
	return []string{net.JoinHostPort(u.Hostname(), port)}
}

// MaskURL returns a broker URL fit for a reply: its password masked (Mask), or, when it
// has a user and no password (a NATS token), that user masked. A URL without
// credentials is returned as is. A list of hosts (kafka+tls://…@a:9093,b:9093/) is
// masked as well as one.
func MaskURL(raw string) string {
	prefix, user, rest, found := splitUserinfo(raw)
	if !found || user == nil {
		return raw
	}
	if pass, ok := user.Password(); ok {
		return prefix + url.User(user.Username()).String() + ":" + Mask(pass) + "@" + rest
	}
	return prefix + Mask(user.Username()) + "@" + rest
}

// URLWithoutCredentials returns a broker URL with its user information removed, for
// storing it in clear beside the sealed original.
func URLWithoutCredentials(raw string) string {
	prefix, user, rest, found := splitUserinfo(raw)
	if !found || user == nil {
		return raw
	}
	return prefix + rest
}
