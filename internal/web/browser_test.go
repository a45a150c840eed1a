package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// chromiumPath is Debian's Chromium; CONSIGN_CHROMIUM names another binary.
func chromiumPath(tb testing.TB) string {
	tb.Helper()
	p := os.Getenv("CONSIGN_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		// In CI a missing browser is a broken machine, not a reason to skip.
		if os.Getenv("CI") != "" {
			tb.Fatalf("Chromium not found at %s (CI must install it: apt-get install chromium): %v", p, err)
		}
		tb.Skipf("Chromium not found at %s; install it (apt-get install chromium) to run the browser test", p)
	}
	return p
}

// artifacts is test-artifacts/ at the repository root, where screenshots go.
func artifacts(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	require.NoError(tb, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(tb, parent, dir, "no go.mod above the test's directory")
		dir = parent
	}
	out := filepath.Join(dir, "test-artifacts")
	require.NoError(tb, os.MkdirAll(out, 0o755))
	return out
}

// a11yCheck lists what a page gets wrong among the basics: a form control without a
// label, a skipped heading level, not exactly one h1, a button or link without a name.
const a11yCheck = `(() => {
  const bad = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (el.labels.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')) {
      bad.push('no label: ' + el.outerHTML.slice(0, 100));
    }
  }
  let prev = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const n = Number(h.tagName[1]);
    if (n > prev + 1) bad.push('h' + n + ' after h' + prev + ': ' + h.textContent.trim().slice(0, 60));
    prev = n;
  }
  const h1s = document.querySelectorAll('h1').length;
  if (h1s !== 1) bad.push(h1s + ' h1 elements');
  for (const el of document.querySelectorAll('button, a[href], summary')) {
    if (!el.textContent.trim() && !el.getAttribute('aria-label')) bad.push('no name: ' + el.outerHTML.slice(0, 100));
  }
  if (!document.documentElement.lang) bad.push('no lang');
  return bad;
})()`

// pageWatch runs before each page's own scripts and collects script errors and CSP
// violations in window.__problems.
const pageWatch = `window.__problems = [];
document.addEventListener('securitypolicyviolation', e => window.__problems.push('CSP ' + e.violatedDirective + ': ' + e.blockedURI));
window.addEventListener('error', e => window.__problems.push('error: ' + e.message));`

// receiver is a partner's webhook endpoint that answers 200 with a recognisable body and
// header, and remembers what it got.
type receiver struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	n := len(rc.reqs)
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Receiver", "acme-wms")
	fmt.Fprintf(w, `{"received":true,"by":"acme-wms","n":%d}`, n)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// TestBrowser drives the real dashboard in headless Chromium: sign in, create an org and
// an endpoint, send a test, see a published event's delivery and its attempt, retry it,
// see the second attempt; and a source with a receipt. Screenshots of each page go to
// test-artifacts/.
func TestBrowser(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	shots := artifacts(t)

	rc := &receiver{}
	sink := httptest.NewServer(rc)
	t.Cleanup(sink.Close)

	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), InsecureTargets: true, AdminKey: adminKey,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	base := a.URL()

	c := newChromium(t, exe, shots, "dashboard-")
	ctx := c.ctx
	do, text, value, location, shot, waitText := c.do, c.text, c.value, c.location, c.shot, c.waitText
	button := func(label string) string { return `//button[normalize-space()="` + label + `"]` }

	// Sign in.
	do("open", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.ID("key")))
	shot("01-signin")
	do("sign in",
		chromedp.SendKeys(chromedp.ID("key"), adminKey),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(chromedp.ID("org-name")))
	require.Contains(t, text("h1"), "Organizations")
	shot("01b-orgs")

	// Create an org.
	do("create org",
		chromedp.SendKeys(chromedp.ID("org-name"), "Acme Outdoor"),
		chromedp.Click(button("Create organization")),
		chromedp.WaitVisible(`//h1[contains(., "Overview of Acme Outdoor")]`))
	loc := location()
	orgID := strings.TrimSuffix(strings.TrimPrefix(loc, base+"/ui/orgs/"), "/")
	require.True(t, strings.HasPrefix(orgID, "org_"), "location %s", loc)
	orgBase := base + "/ui/orgs/" + orgID + "/"

	// Create an endpoint through the form.
	do("new endpoint",
		chromedp.Click(`//nav//a[normalize-space()="Endpoints"]`),
		chromedp.WaitVisible(`//main//a[normalize-space()="New endpoint"]`),
		chromedp.Click(`//main//a[normalize-space()="New endpoint"]`),
		chromedp.WaitVisible(chromedp.ID("url")),
		chromedp.SendKeys(chromedp.ID("url"), sink.URL+"/hooks"),
		chromedp.SendKeys(chromedp.ID("description"), "Acme's warehouse"),
		chromedp.Click(chromedp.CSS(`input[value="order.fulfilled"]`)),
		chromedp.Click(chromedp.CSS(`input[value="order.cancelled"]`)),
		chromedp.SendKeys(chromedp.ID("headers"), "X-Partner: acme"),
		chromedp.SendKeys(chromedp.ID("rate_limit"), "50"),
	)
	shot("02-endpoint-form")
	do("create endpoint",
		chromedp.Click(button("Create endpoint")),
		chromedp.WaitVisible(chromedp.ID("first-secret")))
	secret := value("first-secret")
	require.True(t, strings.HasPrefix(secret, "whsec_"), "secret %q", secret)
	edit, err := chromedp.Run(ctx, chromedp.AttributeValue(`//main//a[normalize-space()="Edit"]`, "href"))
	require.NoError(t, err)
	require.True(t, edit.Exists)
	epID := path.Base(strings.TrimSuffix(edit.Value, "/edit"))
	require.True(t, strings.HasPrefix(epID, "ep_"), "endpoint id from %s", edit.Value)
	shot("03-endpoint-created")

	// Send a test: htmx swaps in the receiver's answer without leaving the page.
	do("test send",
		chromedp.Click(button("Send test")),
		chromedp.WaitVisible(chromedp.CSS(`#test-result .attempt`)))
	require.Contains(t, text("#test-result"), "200 OK")
	require.Contains(t, text("#test-result"), "acme-wms")
	require.Equal(t, 1, rc.count())
	shot("04-test-send")

	// Publish an event through the API; its delivery shows up in the dashboard.
	req, err := http.NewRequest(http.MethodPost, base+"/v1/orgs/"+orgID+"/events",
		strings.NewReader(`{"type":"order.fulfilled","payload":{"order_id":1001,"tracking":"1Z999AA10123456784"}}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)

	waitText(orgBase+"deliveries?topic=order.*", "main table tbody", "succeeded")
	shot("05-deliveries")

	// Open the delivery: the attempt with the receiver's status, headers and body.
	do("open delivery",
		chromedp.Click(chromedp.CSS(`main table tbody a[href*="/deliveries/dlv_"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#attempts .attempt`)))
	attempts := text("#attempts")
	require.Contains(t, attempts, "Attempt 1")
	require.Contains(t, attempts, "200 OK")
	require.Contains(t, attempts, "X-Receiver")
	require.Contains(t, attempts, `"by": "acme-wms"`)
	body, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS("#attempts .attempt")))
	require.NoError(t, err)
	require.Contains(t, body, "1Z999AA10123456784", "the request body is not shown")
	require.Contains(t, body, "Webhook-Signature", "the request headers are not shown")
	do("open the request",
		chromedp.Click(`//summary[normalize-space()="Request headers"]`),
		chromedp.Click(`//summary[normalize-space()="Request body"]`))
	shot("06-delivery")

	// Retry: a second attempt appears (htmx refreshes the attempts while it is due).
	do("retry",
		chromedp.Click(button("Retry now")),
		chromedp.WaitVisible(`//h3[contains(., "Attempt 2")]`),
		chromedp.WaitVisible(button("Retry now")))
	require.Contains(t, text("main"), "Retry queued")
	require.Contains(t, text("#attempts"), "succeeded")
	require.Equal(t, 3, rc.count())
	shot("07-delivery-retried")
	rc.mu.Lock()
	require.Equal(t, "acme", rc.reqs[2].Header.Get("X-Partner"))
	rc.mu.Unlock()

	// Search for the order by its id (a key of order.fulfilled): the event and its
	// delivery; the deliveries page finds the delivery; an unknown order finds nothing.
	do("search events by key",
		chromedp.Navigate(orgBase+"events"),
		chromedp.WaitVisible(chromedp.ID("f-key")),
		chromedp.SendKeys(chromedp.ID("f-key"), "1001"),
		chromedp.Click(button("Filter")),
		chromedp.WaitVisible(chromedp.CSS(`main table tbody a[href*="/deliveries/dlv_"]`)))
	require.Contains(t, location(), "key=1001")
	found := text("main table tbody")
	require.Contains(t, found, "order.fulfilled")
	require.Contains(t, found, "succeeded")
	require.Equal(t, "1001", value("f-key"), "the search box keeps the key")
	shot("07b-search-events")
	do("open the event found",
		chromedp.Click(chromedp.CSS(`main table tbody a[href*="/events/evt_"]`)),
		chromedp.WaitVisible(chromedp.CSS("main h1")))
	require.Contains(t, text("main"), "1Z999AA10123456784", "the event's payload")
	waitText(orgBase+"deliveries?key=1001", "main table tbody", "succeeded")
	shot("07c-search-deliveries")
	do("search a key no event has",
		chromedp.Navigate(orgBase+"events?key=1002"),
		chromedp.WaitVisible(chromedp.CSS("main h1")))
	require.Contains(t, text("main"), "No events match.")
	require.NotContains(t, text("main"), "evt_", "no event listed")

	// The transformation editor: typed code runs on the last order.fulfilled event (the
	// one published above) and htmx shows what would be sent, before anything is saved.
	do("try a transformation",
		chromedp.Navigate(orgBase+"endpoints/"+epID+"/edit"),
		chromedp.WaitVisible(chromedp.ID("transformation")),
		chromedp.SendKeys(chromedp.ID("transformation"), "function handler(webhook) {\n  webhook.payload = {order: webhook.payload.order_id, track: webhook.payload.tracking};\n  webhook.headers[\"X-Kind\"] = webhook.type;\n  return webhook;\n}"),
		chromedp.SetValue(chromedp.ID("sample_type"), "order.fulfilled"),
		chromedp.Click(button("Run on a sample")),
		chromedp.WaitVisible(chromedp.CSS(`#transformation-result pre`)))
	tried := text("#transformation-result")
	require.Contains(t, tried, `"track": "1Z999AA10123456784"`)
	require.Contains(t, tried, "X-Kind: order.fulfilled")
	require.Contains(t, tried, "the last order.fulfilled event")
	require.Contains(t, location(), "/edit", "the page stayed: htmx swapped the result in")
	shot("07d-transformation-tried")
	// A throwing one shows its error in the same place; nothing was saved.
	do("try a failing transformation",
		chromedp.SetValue(chromedp.ID("transformation"), `function handler(webhook) { throw new Error("no tracking") }`),
		chromedp.Click(button("Run on a sample")),
		chromedp.WaitVisible(`//*[@id="transformation-result"]//p[contains(., "no tracking")]`))
	require.Contains(t, text("#transformation-result"), "the transformation threw: Error: no tracking")
	stored, err := a.Manage.Endpoint(context.Background(), orgID, epID)
	require.NoError(t, err)
	require.Empty(t, stored.Transformation, "trying saves nothing")

	// An inbound source: create it, read its URL, post a webhook twice, see the receipts.
	do("new source",
		chromedp.Navigate(orgBase+"sources/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "DropStream shipments"),
		chromedp.SetValue(chromedp.ID("topic"), "shipment.created"),
		chromedp.SetValue(chromedp.ID("verify_type"), "header-token"),
		chromedp.SendKeys(chromedp.ID("verify_header"), "X-Token"),
		chromedp.SendKeys(chromedp.ID("verify_secret"), "s3cret-token-value"),
		chromedp.SendKeys(chromedp.ID("dedupe_pointer"), "/id"))
	shot("08-source-form")
	do("create source",
		chromedp.Click(button("Create source")),
		chromedp.WaitVisible(chromedp.ID("ingest-url")))
	ingest := value("ingest-url")
	require.True(t, strings.HasPrefix(ingest, base+"/in/"), "ingest URL %q", ingest)
	srcURL := location()
	for i := range 2 { // the second is a duplicate
		req, err := http.NewRequest(http.MethodPost, ingest, strings.NewReader(`{"id":"shp_1","order":"10234","carrier":"USPS"}`))
		require.NoError(t, err)
		req.Header.Set("X-Token", "s3cret-token-value")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "post %d: %s", i, body)
	}
	do("sources",
		chromedp.Click(`//nav//a[normalize-space()="Inbound sources"]`),
		chromedp.WaitVisible(`//main//a[normalize-space()="DropStream shipments"]`))
	shot("09-sources")
	do("open source",
		chromedp.Click(`//main//a[normalize-space()="DropStream shipments"]`),
		chromedp.WaitVisible(chromedp.ID("ingest-url")))
	srcURL = location()
	waitText(srcURL, "main", "processed")
	require.Contains(t, text("main"), "duplicate")
	require.Contains(t, text("main"), "shp_1")
	shot("10-source")

	// The other pages render.
	for _, p := range []struct{ name, path, want string }{
		{"11-overview", "", "Endpoints needing attention"},
		{"12-endpoints", "endpoints", "Acme's warehouse"},
		{"13-events", "events", "order.fulfilled"},
		{"14-keys", "keys", "New key"},
		{"15-endpoint", "endpoints/" + epID, "Signing secrets"},
		{"16-endpoint-edit", "endpoints/" + epID + "/edit", "Save changes"},
		{"16b-portal", "portal", "New portal link"},
	} {
		do("open "+p.name, chromedp.Navigate(orgBase+p.path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		require.Contains(t, text("main"), p.want, p.name)
		shot(p.name)
	}

	// Replay history from the endpoint page: the endpoint had the one order event of the
	// last hour, so the job completes having created nothing, and the page lists it.
	do("replay",
		chromedp.Navigate(orgBase+"endpoints/"+epID),
		chromedp.WaitVisible(chromedp.ID("rep-since")),
		chromedp.SetValue(chromedp.ID("rep-since"), time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")),
		chromedp.SendKeys(chromedp.ID("rep-types"), "order.fulfilled"),
		chromedp.Click(button("Replay")),
		chromedp.WaitVisible(`//strong[@id="job-status" and normalize-space()="completed"]`))
	require.Contains(t, text("main"), "Replay started")
	require.Equal(t, "1 of 1", text("#job-scanned"))
	require.Equal(t, "0", text("#job-created"), "the endpoint had the event already")
	shot("16c-replay-job")
	do("the endpoint lists its jobs",
		chromedp.Click(`//main//a[contains(@class, "url")]`),
		chromedp.WaitVisible(chromedp.ID("jobs")))
	require.Contains(t, text("#jobs"), "completed")

	// Deactivate from the endpoint page; the overview lists it as needing attention.
	activate := `//main//summary[normalize-space()="Activate"]`
	do("deactivate",
		chromedp.Navigate(orgBase+"endpoints/"+epID),
		chromedp.Click(button("Deactivate")),
		chromedp.WaitVisible(activate),
		chromedp.Navigate(orgBase),
		chromedp.WaitVisible(chromedp.CSS("main h1")))
	attention := text("main")
	require.Contains(t, attention, "inactive")
	require.Contains(t, attention, sink.URL+"/hooks")
	shot("17-overview-attention")

	// Activating asks what to do with what waited; sending it is one choice.
	do("activate from the overview",
		chromedp.Click(activate),
		chromedp.WaitVisible(button("Discard what waited")),
		chromedp.Click(button("Send what waited")),
		chromedp.WaitVisible(`//*[contains(normalize-space(), "what waited is being sent")]`))
	require.Contains(t, text("main"), "All endpoints are active and healthy")
	shot("18-overview-activated")

	// Sign out: the dashboard asks for a key again.
	do("sign out",
		chromedp.Click(button("Sign out")),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.Navigate(orgBase),
		chromedp.WaitVisible(chromedp.ID("key")))

	t.Logf("screenshots in %s", shots)
}

// chromium is one headless Chromium driven over CDP, with the steps a test takes. Each
// page a test shoots is checked for accessibility basics, script errors and
// Content-Security-Policy violations first.
type chromium struct {
	t      *testing.T
	ctx    context.Context
	shots  string // directory of screenshots
	prefix string // of screenshot file names
}

func newChromium(t *testing.T, exe, shots, prefix string) *chromium {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTimeout)

	// Record script errors and Content-Security-Policy violations of every page.
	_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: pageWatch})
	require.NoError(t, err)
	return &chromium{t: t, ctx: ctx, shots: shots, prefix: prefix}
}

func (c *chromium) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	require.NoError(c.t, chromedp.Do(c.ctx, steps...), what)
}

func (c *chromium) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(c.t, err, "read %s", sel)
	return s
}

func (c *chromium) value(id string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Value(chromedp.ID(id)))
	require.NoError(c.t, err, "read #%s", id)
	return s
}

func (c *chromium) location() string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Location())
	require.NoError(c.t, err)
	return s
}

// shot checks the page and saves its screenshot as <prefix><name>.png.
func (c *chromium) shot(name string) {
	c.t.Helper()
	problems, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](a11yCheck))
	require.NoError(c.t, err)
	require.Empty(c.t, problems, "accessibility problems on %s", name)
	problems, err = chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`window.__problems || ["the page watch did not run"]`))
	require.NoError(c.t, err)
	require.Empty(c.t, problems, "script errors or CSP violations on %s", name)
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	require.NoError(c.t, err, "screenshot %s", name)
	require.NoError(c.t, os.WriteFile(filepath.Join(c.shots, c.prefix+name+".png"), png, 0o644))
}

// waitText loads url until the element sel contains want.
func (c *chromium) waitText(url, sel, want string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.do("load "+url, chromedp.Navigate(url))
		s := c.text(sel)
		if strings.Contains(s, want) {
			return
		}
		require.True(c.t, time.Now().Before(deadline), "%s never showed %q in %s; last:\n%s", url, want, sel, s)
		time.Sleep(200 * time.Millisecond)
	}
}
