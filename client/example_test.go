package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/consign-dev/consign/client"
)

// A platform sets up an endpoint for a buyer (a retailer) and tells it an order shipped;
// order.fulfilled is a buyers' topic, which a seller org's endpoints would not get.
func Example() {
	ctx := context.Background()
	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))

	org, err := c.Orgs.Create(ctx, client.OrgInput{Name: "Acme Outdoor", Role: client.RoleBuyer})
	if err != nil {
		log.Fatal(err)
	}
	ep, err := c.Endpoints.Create(ctx, org.ID, client.EndpointInput{
		URL:       "https://partner.example.com/hooks",
		Topics:    []string{"order.*", "inventory.updated"},
		RateLimit: 10, // requests per second
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("give the partner this secret:", ep.Secret) // shown this once

	ev, err := c.Events.Publish(ctx, org.ID, client.EventInput{
		Type:    "order.fulfilled",
		Payload: map[string]any{"order_id": 1001, "tracking": "1Z999"},
	}, client.IdempotencyKey("order-1001-fulfilled"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", ev.ID, "duplicate:", ev.Duplicate)
}

// Every failed reply is an *Error with the API's problem document.
func ExampleError() {
	// A stand-in for the server, answering as Consign does to an invalid endpoint.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"type":"urn:consign:error:invalid","title":"Unprocessable Entity","status":422,
			"detail":"topics: must name at least one event type (and 1 more)",
			"errors":[{"field":"topics","message":"must name at least one event type"},
			          {"field":"method","message":"must be \"POST\" or \"PUT\""}]}`)
	}))
	defer srv.Close()

	c := client.New(srv.URL, "key")
	_, err := c.Endpoints.Create(context.Background(), "org_1", client.EndpointInput{URL: "https://example.com", Method: "GET"})
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code())
		for _, f := range apiErr.Errors {
			fmt.Printf("%s: %s\n", f.Field, f.Message)
		}
	}
	// Output:
	// 422 invalid
	// topics: must name at least one event type
	// method: must be "POST" or "PUT"
}

// All walks every page of a list, fetching the next page as the loop reaches it.
func ExampleDeliveryService_All() {
	ctx := context.Background()
	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))
	for d, err := range c.Deliveries.All(ctx, "org_01JD…", &client.DeliveryListOptions{Status: client.StatusFailed}) {
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.Deliveries.Retry(ctx, "org_01JD…", d.ID); err != nil {
			log.Print(err)
		}
	}
}

// Deactivate an endpoint while the partner is down, then bring it back: its deliveries
// wait as paused and are sent when it is active again.
func ExampleEndpointService_Update() {
	ctx := context.Background()
	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))
	if _, err := c.Endpoints.Update(ctx, "org_01JD…", "ep_01JD…", client.EndpointPatch{Active: new(false)}); err != nil {
		log.Fatal(err)
	}
	// …
	if _, err := c.Endpoints.Update(ctx, "org_01JD…", "ep_01JD…", client.EndpointPatch{Active: new(true)}); err != nil {
		log.Fatal(err)
	}
}

// Rotate a secret: the new one signs from now on, alongside the old one for a day, so
// the partner can switch without missing a webhook.
func ExampleSecretService_Rotate() {
	ctx := context.Background()
	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))
	sec, err := c.Secrets.Rotate(ctx, "org_01JD…", "ep_01JD…", client.RotateInput{Grace: new(24 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new secret:", sec.Value)
}

// Publish up to 1,000 events in one durable write.
func ExampleEventService_PublishBatch() {
	ctx := context.Background()
	c := client.New("https://consign.example.com", os.Getenv("CONSIGN_KEY"))
	events, err := c.Events.PublishBatch(ctx, "org_01JD…", []client.EventInput{
		{Type: "inventory.updated", Payload: map[string]any{"sku": "TENT-2P", "available": 14}, OrderingKey: "TENT-2P"},
		{Type: "inventory.updated", Payload: map[string]any{"sku": "STOVE-1", "available": 0}, OrderingKey: "STOVE-1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.ID)
	}
}
