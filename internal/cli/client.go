package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/client"
)

// clientCmds are the commands that call a running server's API. They are embedded in
// the root, so each resource is a top-level command: consign orgs list, …
type clientCmds struct {
	Orgs        orgsCmd        `cmd:"" help:"Orgs: the tenants (admin key)."`
	Keys        keysCmd        `cmd:"" help:"An org's API keys."`
	EventTypes  eventTypesCmd  `cmd:"" name:"event-types" help:"The event-type catalog."`
	Endpoints   endpointsCmd   `cmd:"" help:"An org's webhook endpoints."`
	Secrets     secretsCmd     `cmd:"" help:"An endpoint's signing secrets."`
	Events      eventsCmd      `cmd:"" help:"Publish and read an org's events."`
	Deliveries  deliveriesCmd  `cmd:"" help:"An org's deliveries and their attempts."`
	Sources     sourcesCmd     `cmd:"" help:"An org's inbound sources and what they received."`
	PortalLinks portalLinksCmd `cmd:"" name:"portal-links" help:"One-time links that sign a partner's browser into the dashboard for one org (the partner portal)."`
	Jobs        jobsCmd        `cmd:"" help:"An org's jobs: replays and recover runs, with their progress."`
}

// remote holds the flags of every command that calls the API. The server's flag is
// --server, not --url, because endpoint commands take the endpoint's --url.
type remote struct {
	Server string `env:"CONSIGN_URL" default:"http://127.0.0.1:8700" help:"Base URL of the Consign server."`
	Key    string `env:"CONSIGN_KEY" help:"API key: the admin key or an org key."`
	JSON   bool   `name:"json" help:"Print the API's JSON reply as it is, for scripts."`
}

// orgFlag selects the org of org-scoped commands.
type orgFlag struct {
	Org string `required:"" env:"CONSIGN_ORG" help:"The org's id."`
}

// pageFlags select a page of a list.
type pageFlags struct {
	Limit  int    `help:"Items per page, 1 to 500 (default 50)."`
	Cursor string `help:"Continue a list after this cursor (printed at the end of the previous page)."`
}

func (p pageFlags) options() *client.ListOptions {
	return &client.ListOptions{Limit: p.Limit, Cursor: p.Cursor}
}

// session is one command's connection to the API: the client, and the last reply's
// bytes, which --json prints unchanged.
type session struct {
	*client.Client
	env  *runEnv
	json bool
	rec  *recorder
}

// open starts a session with the command's flags.
func (r *remote) open(env *runEnv) (*session, error) {
	if r.Key == "" {
		return nil, codeError{2, errors.New("no API key: set CONSIGN_KEY or pass --key")}
	}
	if !strings.HasPrefix(r.Server, "http://") && !strings.HasPrefix(r.Server, "https://") {
		return nil, codeError{2, fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8700", r.Server)}
	}
	rec := &recorder{next: http.DefaultTransport}
	hc := &http.Client{Timeout: client.DefaultTimeout, Transport: rec}
	c := client.New(r.Server, r.Key, client.WithHTTPClient(hc), client.WithUserAgent("consign-cli/"+consign.Version))
	return &session{Client: c, env: env, json: r.JSON, rec: rec}, nil
}

// recorder keeps the body of the last reply as the client reads it.
type recorder struct {
	next http.RoundTripper
	last bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.last.Reset()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, &r.last), resp.Body}
	return resp, nil
}

// fail turns an error of a call into what the user reads: the problem's detail and
// every invalid field, or a hint when the server cannot be reached.
func (s *session) fail(err error) error {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return problemError{apiErr}
	}
	if errors.Is(err, s.env.ctx.Err()) && s.env.ctx.Err() != nil {
		return err
	}
	// The client's errors start with "consign: ", which Run prints already.
	return fmt.Errorf("%s\n(is the server running? set --server or CONSIGN_URL)", strings.TrimPrefix(err.Error(), "consign: "))
}

// problemError prints an API error: the detail, the fields, the status.
type problemError struct{ e *client.Error }

func (p problemError) Error() string {
	var b strings.Builder
	detail := p.e.Detail
	if detail == "" {
		detail = "the server refused the request"
	}
	if len(p.e.Errors) > 1 {
		detail = fmt.Sprintf("%d fields are invalid", len(p.e.Errors))
	}
	fmt.Fprintf(&b, "%s (%d %s)", detail, p.e.Status, p.e.Title)
	if len(p.e.Errors) > 1 {
		for _, f := range p.e.Errors {
			fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
		}
	}
	return b.String()
}

// print shows a reply: with --json the API's bytes, else what render writes.
func (s *session) print(render func(w io.Writer)) error {
	if s.json {
		out := bytes.TrimRight(s.rec.last.Bytes(), "\n")
		_, err := fmt.Fprintf(s.env.stdout, "%s\n", out)
		return err
	}
	render(s.env.stdout)
	return nil
}

// printList shows a page of a list and, for people, how to get the next one.
func (s *session) printList(next string, render func(w io.Writer)) error {
	if err := s.print(render); err != nil {
		return err
	}
	if next != "" && !s.json {
		fmt.Fprintf(s.env.stderr, "more: add --cursor %s\n", next)
	}
	return nil
}

// done reports an operation that has no reply body (a deletion).
func (s *session) done(format string, args ...any) error {
	if s.json {
		return nil
	}
	_, err := fmt.Fprintf(s.env.stdout, format+"\n", args...)
	return err
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(strAny(header)...)
	}
	return t
}

func strAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// row writes one line; each cell is shown with cell.
func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, cell(c))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() { t.tw.Flush() }

// fields writes name/value lines, one per pair.
func fields(w io.Writer, pairs ...any) {
	t := newTable(w)
	for i := 0; i+1 < len(pairs); i += 2 {
		t.row(pairs[i], pairs[i+1])
	}
	t.flush()
}

// cell shows a value in a table: times in UTC to the second, "-" for nothing.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(x)
	case time.Time:
		if x.IsZero() {
			return "-"
		}
		return x.UTC().Format(time.RFC3339)
	case *time.Time:
		if x == nil {
			return "-"
		}
		return cell(*x)
	case []string:
		return cell(strings.Join(x, ","))
	case map[string]string:
		parts := make([]string, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+"="+x[k])
		}
		return cell(strings.Join(parts, ","))
	case client.Duration:
		return time.Duration(x).String()
	case fmt.Stringer:
		return cell(x.String())
	}
	return fmt.Sprint(v)
}

// readInput reads a file, or standard input for "" and "-", up to limit bytes.
func readInput(env *runEnv, file string, limit int64) ([]byte, error) {
	var r io.Reader = env.stdin
	name := "standard input"
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, codeError{2, err}
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, codeError{2, fmt.Errorf("read %s: %w", name, err)}
	}
	if int64(len(b)) > limit {
		return nil, codeError{2, fmt.Errorf("%s is over %d bytes", name, limit)}
	}
	return b, nil
}

// readJSON reads a JSON document from a file (or standard input) into v, refusing
// fields v does not have, so that a misspelt field is not quietly dropped.
func readJSON(env *runEnv, file string, v any) error {
	b, err := readInput(env, file, 16<<20)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return codeError{2, fmt.Errorf("%s: %w", file, err)}
	}
	return nil
}

// parseSince reads a time: RFC 3339, or a duration meaning that long ago ("24h", "3d").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := consign.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-11-23T00:00:00Z) or a duration ago (24h, 3d)", s)
	}
	return now.Add(-d), nil
}
