package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"time"

	"github.com/consign-dev/consign/webhook"
)

// A receiver verifies each request itself, then parses the body it verified.
func ExampleVerify() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // the endpoint's secret, from the Consign API
	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	// WithNow pins the clock to the message's time so that the example keeps working;
	// a receiver leaves it out.
	at := webhook.WithNow(func() time.Time { return time.Unix(1614265330, 0) })
	fmt.Println(webhook.Verify(secret, h, body, at))

	late := webhook.WithNow(func() time.Time { return time.Unix(1614265330+3600, 0) })
	fmt.Println(webhook.Verify(secret, h, body, late))
	// Output:
	// <nil>
	// webhook: timestamp too old: webhook-timestamp is 3600s before now, tolerance 300s
}

// Middleware lets only verified requests through, with the body intact and the webhook id
// (the same on every retry) to drop duplicates by.
func ExampleMiddleware() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := webhook.IDFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("verified %s: %s\n", id, body)
	})
	srv := httptest.NewServer(webhook.Middleware(secret, handler))
	defer srv.Close()

	send := func(body []byte, sign bool) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		now := time.Now()
		req.Header.Set("webhook-id", "evt_01")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		sig, _ := webhook.Sign(secret, "evt_01", now, []byte(`{"order_id": 1001}`))
		if !sign {
			sig = "v1,forged"
		}
		req.Header.Set("webhook-signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	send([]byte(`{"order_id": 1001}`), true)
	send([]byte(`{"order_id": 1001}`), false)
	// Output:
	// verified evt_01: {"order_id": 1001}
	// 200 OK
	// 401 Unauthorized
}

// During a secret rotation the receiver holds both secrets; a request signed with either
// passes. Consign signs with every active secret of the endpoint until the old one expires.
func ExampleNewVerifier() {
	v, err := webhook.NewVerifier([]string{os.Getenv("OLD_SECRET"), os.Getenv("NEW_SECRET")},
		webhook.WithTolerance(10*time.Minute))
	if err != nil {
		log.Fatal(err) // a secret is missing or malformed
	}
	http.Handle("POST /hooks/consign", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
}
