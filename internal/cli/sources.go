package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/client"
)

type sourcesCmd struct {
	List        sourcesListCmd        `cmd:"" help:"List an org's inbound sources."`
	Get         sourcesGetCmd         `cmd:"" help:"Show a source and its ingest URL."`
	Create      sourcesCreateCmd      `cmd:"" help:"Create a source; a generated secret is shown once."`
	Delete      sourcesDeleteCmd      `cmd:"" help:"Delete a source and its receipts."`
	RotateToken sourcesRotateTokenCmd `cmd:"" name:"rotate-token" help:"Give a source a new ingest URL; the old one stops working."`
	Receipts    sourcesReceiptsCmd    `cmd:"" help:"List what a source received, newest first."`
}

type sourcesListCmd struct {
	remote
	orgFlag
	pageFlags
}

func (c *sourcesListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Sources.List(env.ctx, c.Org, c.options())
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "TOPIC", "VERIFY", "POLL", "NAME")
		for _, src := range page.Data {
			t.row(src.ID, src.Topic, src.Verify.Type, src.Poll != nil, src.Name)
		}
		t.flush()
	})
}

type sourcesGetCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The source's id."`
}

func (c *sourcesGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	src, err := s.Sources.Get(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showSource(w, src) })
}

type sourcesCreateCmd struct {
	remote
	orgFlag
	Name          string   `help:"What the source receives, such as 'Deposco shipments'."`
	Topic         string   `help:"The event type each accepted request becomes."`
	Verify        string   `help:"How requests are verified: none, hmac-sha256, standard-webhooks, basic or header-token."`
	Header        string   `help:"The header with the signature (hmac-sha256) or the token (header-token)."`
	Secret        string   `help:"The shared secret; default: generated and shown once."`
	DedupeHeader  string   `help:"The header that carries the provider's event id."`
	DedupePointer string   `help:"A JSON pointer to the provider's event id in the body, such as /id."`
	TypeHeader    string   `help:"The header (or message header) that names each event's type; default: --topic."`
	TypePointer   string   `help:"A JSON pointer to each event's type in the body, such as /type; default: --topic."`
	NATS          string   `name:"nats" help:"Also read messages from this NATS server (tls://[user:pass@]host:4222; nats:// for plaintext, with serve --insecure-targets) with JetStream; needs --subject."`
	Subject       string   `help:"The NATS subject to read (a JetStream stream must hold it)."`
	Durable       string   `help:"The NATS durable consumer's name; default: consign_ and the source id."`
	AMQP          string   `name:"amqp" help:"Also read messages from this AMQP broker (amqps://user:pass@host:5671/vhost; amqp:// for plaintext, with serve --insecure-targets); needs --queue."`
	Queue         string   `help:"The AMQP queue to read (it must exist)."`
	Kafka         []string `name:"kafka" help:"Also read messages from these Kafka brokers (host:port, comma-separated, plaintext: serve --insecure-targets; the API's from.url takes kafka+tls://); needs --kafka-topic and --group."`
	KafkaTopic    string   `name:"kafka-topic" help:"The Kafka topic to read."`
	Group         string   `help:"The Kafka consumer group, whose committed offsets say where reading resumes."`
	FromFile      string   `help:"Read the source as the API's JSON from this file (- for standard input); flags override it."`
	brokerTLSFlags
}

// brokerTLSFlags set a broker source's own TLS settings (from.tls) from PEM files, each
// field over --from-file's.
type brokerTLSFlags struct {
	BrokerCaFile     string `name:"broker-ca-file" help:"A PEM file with the broker's CA certificates, trusted for this source instead of the system roots." group:"Broker TLS"`
	BrokerClientCert string `name:"broker-client-cert" help:"A PEM file with the client certificate (and any intermediates) presented to the broker for mutual TLS." group:"Broker TLS"`
	BrokerClientKey  string `name:"broker-client-key" help:"A PEM file with the client certificate's private key (stored sealed, never shown)." group:"Broker TLS"`
}

// apply reads the files named into f.TLS.
func (c *brokerTLSFlags) apply(env *runEnv, f *client.SourceFrom) error {
	if c.BrokerCaFile == "" && c.BrokerClientCert == "" && c.BrokerClientKey == "" {
		return nil
	}
	if f == nil {
		return codeError{2, fmt.Errorf("--broker-ca-file, --broker-client-cert and --broker-client-key need a broker: --nats, --amqp, --kafka or a from in --from-file")}
	}
	if f.TLS == nil {
		f.TLS = &client.FromTLS{}
	}
	for file, dst := range map[string]*string{c.BrokerCaFile: &f.TLS.CACertificates, c.BrokerClientCert: &f.TLS.ClientCertificate,
		c.BrokerClientKey: &f.TLS.ClientKey} {
		if file == "" {
			continue
		}
		b, err := readInput(env, file, consign.MaxPEM)
		if err != nil {
			return err
		}
		*dst = string(b)
	}
	return nil
}

func (c *sourcesCreateCmd) Run(env *runEnv) error {
	var in client.SourceInput
	if c.FromFile != "" {
		if err := readJSON(env, c.FromFile, &in); err != nil {
			return err
		}
	}
	if c.Name != "" {
		in.Name = c.Name
	}
	if c.Topic != "" {
		in.Topic = c.Topic
	}
	if c.Verify != "" || c.Header != "" || c.Secret != "" {
		if in.Verify == nil {
			in.Verify = &client.SourceVerify{}
		}
		for dst, v := range map[*string]string{&in.Verify.Type: c.Verify, &in.Verify.Header: c.Header, &in.Verify.Secret: c.Secret} {
			if v != "" {
				*dst = v
			}
		}
	}
	if c.DedupeHeader != "" || c.DedupePointer != "" {
		in.Dedupe = &client.SourceDedupe{Header: c.DedupeHeader, JSONPointer: c.DedupePointer}
	}
	if c.TypeHeader != "" {
		in.TypeHeader = c.TypeHeader
	}
	if c.TypePointer != "" {
		in.TypePointer = c.TypePointer
	}
	switch {
	case c.NATS != "":
		in.From = &client.SourceFrom{Type: "nats", URL: c.NATS, Subject: c.Subject, Durable: c.Durable}
	case c.AMQP != "":
		in.From = &client.SourceFrom{Type: "amqp", URL: c.AMQP, Queue: c.Queue}
	case len(c.Kafka) > 0:
		in.From = &client.SourceFrom{Type: "kafka", Brokers: c.Kafka, Topic: c.KafkaTopic, Group: c.Group}
	}
	if err := c.brokerTLSFlags.apply(env, in.From); err != nil {
		return err
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	src, err := s.Sources.Create(env.ctx, c.Org, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		showSource(w, src)
		fmt.Fprintln(w, "\nGive the provider the ingest URL; a secret shown here is not shown again.")
	})
}

type sourcesDeleteCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The source's id."`
}

func (c *sourcesDeleteCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	if err := s.Sources.Delete(env.ctx, c.Org, c.ID); err != nil {
		return s.fail(err)
	}
	return s.done("deleted %s", c.ID)
}

type sourcesRotateTokenCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The source's id."`
}

func (c *sourcesRotateTokenCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	src, err := s.Sources.RotateToken(env.ctx, c.Org, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showSource(w, src) })
}

type sourcesReceiptsCmd struct {
	remote
	orgFlag
	pageFlags
	ID        string `arg:"" help:"The source's id."`
	Verified  *bool  `negatable:"" help:"Only receipts that passed (--verified) or failed (--no-verified) verification."`
	Duplicate *bool  `negatable:"" help:"Only duplicates (--duplicate), or none (--no-duplicate)."`
	Via       string `help:"Only those that came by webhook or by poll."`
	Status    string `help:"Only those in this state: pending, processed, duplicate or rejected."`
}

func (c *sourcesReceiptsCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Sources.Receipts(env.ctx, c.Org, c.ID, &client.ReceiptListOptions{Limit: c.Limit, Cursor: c.Cursor,
		Verified: c.Verified, Duplicate: c.Duplicate, Via: c.Via, Status: c.Status})
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "VIA", "STATUS", "VERIFIED", "RECEIVED", "EVENT", "REASON")
		for _, rc := range page.Data {
			t.row(rc.ID, rc.Via, rc.Status, rc.Verified, rc.ReceivedAt, rc.EventID, rc.Reason)
		}
		t.flush()
	})
}

func showSource(w io.Writer, src *client.Source) {
	pairs := []any{"id", src.ID, "name", src.Name, "topic", src.Topic, "ingest_url", src.IngestURL,
		"verify", src.Verify.Type}
	if src.Verify.Header != "" {
		pairs = append(pairs, "verify_header", src.Verify.Header)
	}
	if src.Verify.Secret != "" {
		pairs = append(pairs, "secret", src.Verify.Secret)
	}
	dedupe := "-"
	switch {
	case src.Dedupe.Header != "":
		dedupe = "header " + src.Dedupe.Header
	case src.Dedupe.JSONPointer != "":
		dedupe = "json_pointer " + src.Dedupe.JSONPointer
	}
	pairs = append(pairs, "dedupe", dedupe)
	switch {
	case src.TypeHeader != "":
		pairs = append(pairs, "type_from", "header "+src.TypeHeader)
	case src.TypePointer != "":
		pairs = append(pairs, "type_from", "json_pointer "+src.TypePointer)
	}
	if f := src.From; f != nil {
		switch f.Type {
		case "nats":
			pairs = append(pairs, "from", "nats "+f.URL+" subject "+f.Subject+" durable "+f.Durable)
		case "amqp":
			pairs = append(pairs, "from", "amqp "+f.URL+" queue "+f.Queue)
		case "kafka":
			brokers := f.URL
			if brokers == "" {
				brokers = strings.Join(f.Brokers, ",")
			}
			pairs = append(pairs, "from", "kafka "+brokers+" topic "+f.Topic+" group "+f.Group)
		}
		if t := f.TLS; t != nil {
			pairs = tlsPairs(pairs, "from_tls_", t.Subject, t.Issuer, t.NotAfter, t.CASubjects)
		}
		if st := src.FromStatus; st != nil {
			var lag any
			if st.Lag != nil {
				lag = *st.Lag
			}
			pairs = append(pairs, "from_connected", st.Connected, "from_messages", st.Messages, "from_lag", lag,
				"from_last_message_at", st.LastMessageAt, "from_last_error", st.LastError)
		}
	}
	if p := src.Poll; p != nil {
		schedule := "every " + cell(p.Interval)
		if p.Cron != "" {
			schedule = "cron " + p.Cron + " " + p.Timezone
		}
		pairs = append(pairs, "poll", p.URL+" ("+schedule+")")
		if st := src.PollStatus; st != nil {
			pairs = append(pairs, "poll_next_run_at", st.NextRunAt, "poll_last_error", st.LastError, "poll_synced_until", st.SyncedUntil)
		}
	}
	fields(w, append(pairs, "created_at", src.CreatedAt, "updated_at", src.UpdatedAt)...)
}
