package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign/internal/app"
)

// apiCall makes an admin API request and decodes the JSON reply into out (if not nil).
func apiCall(t *testing.T, base, method, path string, body any, want int, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, base+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, want, res.StatusCode, "%s %s: %s", method, path, data)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out))
	}
}

// logoPNG is a small PNG logo as a data: URL.
func logoPNG(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 24, 24))
	for x := range 24 {
		for y := range 24 {
			img.Set(x, y, color.RGBA{R: 255, G: 179, B: 0, A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// settableClock is the app's clock, moved forward to expire a link.
type settableClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *settableClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *settableClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// TestBrowserPortal drives the partner portal in headless Chromium: a platform's page
// embeds a portal link in an iframe (another site); the link opened at the top lands in
// the org's portal with its branding; the partner creates an endpoint, sends a test that
// a real receiver gets, sees the published event's delivery, retries it, rotates the
// secrets and recovers the endpoint's deliveries; other orgs' pages and the
// platform's pages are refused when typed in; a used and an expired link get a page
// that says so; a read-only link hides every control and a forged form is refused.
func TestBrowserPortal(t *testing.T) {
	t.Parallel()
	exe := chromiumPath(t)
	shots := artifacts(t)

	rc := &receiver{}
	sink := httptest.NewServer(rc)
	t.Cleanup(sink.Close)

	// The platform's own page, on another site (127.0.0.1; the portal is at localhost).
	var frameSrc atomic.Value
	frameSrc.Store("")
	platform := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Platform settings</title></head><body>
<h1>Your webhooks</h1><iframe id="portal" title="Webhooks portal" src="%s" width="1200" height="700"></iframe></body></html>`, frameSrc.Load())
	}))
	t.Cleanup(platform.Close)

	clk := &settableClock{}
	a, err := app.Start(context.Background(), app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), InsecureTargets: true, AdminKey: adminKey, Now: clk.now,
		UIFrameAncestors: []string{platform.URL},
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, a.Close()) })
	base := a.URL()
	localBase := strings.Replace(base, "127.0.0.1", "localhost", 1)

	// The platform sets up two partners; Birch has an endpoint Acme must never see.
	var acme, birch struct {
		ID string `json:"id"`
	}
	apiCall(t, base, "POST", "/v1/orgs", map[string]any{"name": "Acme Outdoor", "branding": map[string]any{
		"name": "Acme <Partner> Hub", "logo_url": logoPNG(t), "color": "#0a7d4f"}}, http.StatusCreated, &acme)
	apiCall(t, base, "POST", "/v1/orgs", map[string]any{"name": "Birch Supply"}, http.StatusCreated, &birch)
	var birchEP struct {
		ID string `json:"id"`
	}
	apiCall(t, base, "POST", "/v1/orgs/"+birch.ID+"/endpoints", map[string]any{"url": sink.URL + "/birch-private", "topics": []string{"order.created"}},
		http.StatusCreated, &birchEP)
	link := func(body map[string]any) string {
		t.Helper()
		var l struct {
			URL string `json:"url"`
		}
		apiCall(t, base, "POST", "/v1/orgs/"+acme.ID+"/portal-links", body, http.StatusCreated, &l)
		require.True(t, strings.HasPrefix(l.URL, base+"/ui/portal/cpl_"), l.URL)
		return l.URL
	}

	c := newChromium(t, exe, shots, "portal-")
	button := func(label string) string { return `//button[normalize-space()="` + label + `"]` }
	orgBase := base + "/ui/orgs/" + acme.ID + "/"

	// Embedded: the platform's page frames a portal link of another site; the frame
	// follows the link into the portal, its session cookie sent inside the iframe.
	frameSrc.Store(strings.Replace(link(nil), base, localBase, 1))
	c.do("open the platform's page", chromedp.Navigate(platform.URL), chromedp.WaitVisible(chromedp.ID("portal")))
	var framed string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasSuffix(framed, "/ui/orgs/"+acme.ID+"/") {
		require.True(t, time.Now().Before(deadline), "the iframe did not land in the portal (last at %q): its session cookie was not sent", framed)
		time.Sleep(100 * time.Millisecond)
		framed = frameURL(c.ctx)
	}
	c.shot("01-embedded")

	// At the top: the org's portal with its branding, nothing of the platform's.
	c.do("open a portal link", chromedp.Navigate(link(map[string]any{"expires_in": "10m"})), chromedp.WaitVisible(`//h1[contains(., "Overview of Acme Outdoor")]`))
	require.Equal(t, orgBase, c.location(), "the token is gone from the address bar")
	require.Equal(t, "Acme <Partner> Hub", strings.TrimSpace(c.text("header .brand")))
	loaded, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](`document.querySelector('header .brand img.logo').naturalWidth === 24`))
	require.NoError(t, err)
	require.True(t, loaded, "the logo shows")
	bg, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('header.top')).backgroundColor`))
	require.NoError(t, err)
	require.Equal(t, "rgb(10, 125, 79)", bg, "the header has the org's colour")
	nav := c.text("header nav")
	require.NotContains(t, nav, "API keys")
	require.NotContains(t, nav, "Inbound sources")
	c.shot("02-overview")

	// Create an endpoint and send it a test: the receiver gets it.
	c.do("new endpoint",
		chromedp.Click(`//nav//a[normalize-space()="Endpoints"]`),
		chromedp.Click(`//main//a[normalize-space()="New endpoint"]`),
		chromedp.WaitVisible(chromedp.ID("url")),
		chromedp.SendKeys(chromedp.ID("url"), sink.URL+"/acme"),
		chromedp.Click(chromedp.CSS(`input[value="order.created"]`)),
		chromedp.Click(button("Create endpoint")),
		chromedp.WaitVisible(chromedp.ID("first-secret")))
	edit, err := chromedp.Run(c.ctx, chromedp.AttributeValue(`//main//a[normalize-space()="Edit"]`, "href"))
	require.NoError(t, err)
	epURL := base + strings.TrimSuffix(edit.Value, "/edit")
	require.True(t, strings.HasPrefix(epURL, orgBase+"endpoints/ep_"), epURL)
	c.shot("03-endpoint")
	c.do("test send", chromedp.Click(button("Send test")), chromedp.WaitVisible(chromedp.CSS(`#test-result .attempt`)))
	require.Contains(t, c.text("#test-result"), "200 OK")
	require.Equal(t, 1, rc.count())
	rc.mu.Lock()
	require.Equal(t, "/acme", rc.reqs[0].URL.Path)
	rc.mu.Unlock()
	c.shot("04-test-sent")

	// An event the platform publishes: its delivery and attempt show in the portal.
	apiCall(t, base, "POST", "/v1/orgs/"+acme.ID+"/events", map[string]any{"type": "order.created", "payload": map[string]any{"order_id": 4411}},
		http.StatusAccepted, nil)
	c.waitText(orgBase+"deliveries", "main table tbody", "succeeded")
	c.do("open delivery", chromedp.Click(chromedp.CSS(`main table tbody a[href*="/deliveries/dlv_"]`)), chromedp.WaitVisible(chromedp.CSS(`#attempts .attempt`)))
	require.Contains(t, c.text("#attempts"), "200 OK")
	c.shot("05-delivery")
	c.do("retry", chromedp.Click(button("Retry now")), chromedp.WaitVisible(`//h3[contains(., "Attempt 2")]`))
	require.Contains(t, c.text("main"), "Retry queued")

	// Rotate the endpoint's secrets and recover its deliveries of the last hour.
	c.do("rotate", chromedp.Navigate(epURL), chromedp.Click(button("Rotate secrets")),
		chromedp.WaitVisible(`//h2[contains(., "Secret added")]`))
	rows, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#secrets tbody tr')].map(r => r.textContent.replace(/\s+/g, ' ').trim())`))
	require.NoError(t, err)
	require.Len(t, rows, 2, "the new secret beside the old: %v", rows)
	since := clk.now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")
	c.do("recover",
		chromedp.SetValue(chromedp.ID("rec-since"), since),
		chromedp.SetValue(chromedp.ID("rec-status"), "succeeded"),
		chromedp.Click(button("Recover")),
		chromedp.WaitVisible(`//*[contains(normalize-space(), "Re-queued")]`))
	require.Contains(t, c.text("main"), "Re-queued 2 deliveries")

	// Typed URLs of another org, or of the platform, are refused and tell nothing.
	for _, path := range []string{
		"/ui/orgs/" + birch.ID + "/", "/ui/orgs/" + birch.ID + "/endpoints/" + birchEP.ID,
		"/ui/orgs/" + acme.ID + "/endpoints/" + birchEP.ID, "/ui/orgs/" + acme.ID + "/keys",
		"/ui/orgs/" + acme.ID + "/sources", "/ui/orgs/" + acme.ID + "/portal",
	} {
		c.do("open "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		require.Contains(t, c.text("main h1"), "404", path)
		main := c.text("main")
		require.NotContains(t, main, "Birch", path)
		require.NotContains(t, main, "birch-private", path)
	}
	c.shot("06-other-org-refused")

	// The link is used up; another one expires unopened.
	used := link(nil)
	c.do("open a link", chromedp.Navigate(used), chromedp.WaitVisible(`//h1[contains(., "Overview")]`))
	c.do("open it again", chromedp.Navigate(used), chromedp.WaitVisible(chromedp.CSS("main h1")))
	require.Contains(t, c.text("main"), "already used")
	require.Contains(t, c.text("main"), "Ask the platform that sent you here for a new link")
	c.shot("07-used-link")

	// Read-only: no control, and a form forged into the page is refused.
	c.do("open a read-only link", chromedp.Navigate(link(map[string]any{"read_only": true})), chromedp.WaitVisible(`//h1[contains(., "Overview")]`))
	c.do("open the endpoint", chromedp.Navigate(epURL), chromedp.WaitVisible(chromedp.CSS("main h1")))
	buttons, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('main button, main a.button, main summary.button')].map(b => b.textContent.trim())`))
	require.NoError(t, err)
	require.Empty(t, buttons, "a read-only page shows no control")
	require.Contains(t, c.text("header"), "Read-only")
	c.shot("08-read-only")
	sent := rc.count()
	_, err = chromedp.Run(c.ctx, chromedp.Evaluate[bool](`(() => {
  const f = document.createElement('form');
  f.method = 'post';
  f.action = location.pathname + '/test';
  for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['type', 'order.created']]) {
    const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
  }
  document.body.appendChild(f);
  f.submit();
  return true;
})()`))
	require.NoError(t, err, "forge a test send")
	c.do("see the answer", chromedp.WaitVisible(`//h1[contains(., "403")]`))
	require.Contains(t, c.text("main"), "read-only")
	require.Equal(t, sent, rc.count(), "the forged test was not sent")

	expiring := link(map[string]any{"expires_in": "1h"})
	clk.advance(2 * time.Hour)
	c.do("open an expired link", chromedp.Navigate(expiring), chromedp.WaitVisible(chromedp.CSS("main h1")))
	require.Contains(t, c.text("main"), "expired")
	require.Contains(t, c.text("main"), "Ask the platform that sent you here for a new link")
	c.shot("09-expired-link")

	t.Logf("screenshots in %s", shots)
}

// frameURL returns the URL of the page's first iframe: from the frame tree, or from the
// browser's targets when the frame runs in a process of its own (site isolation).
func frameURL(ctx context.Context) string {
	res, err := chromedp.Call(ctx, cdppage.GetFrameTree, cdp.Empty{})
	if err == nil && res.FrameTree != nil {
		for _, ch := range res.FrameTree.ChildFrames {
			if ch.Frame != nil && ch.Frame.URL != "" && ch.Frame.URL != "about:blank" {
				return ch.Frame.URL
			}
		}
	}
	targets, err := chromedp.Targets(ctx)
	if err != nil {
		return ""
	}
	for _, ti := range targets {
		if ti.Type == "iframe" {
			return ti.URL
		}
	}
	return ""
}
