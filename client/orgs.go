package client

import (
	"context"
	"iter"
	"net/http"
)

// OrgService manages orgs (admin key; an org key may Get its own org).
type OrgService struct{ c *Client }

// OrgInput is an org's writable fields. In an Update, empty fields keep their values.
type OrgInput struct {
	Name string `json:"name,omitempty"`
	// Role is buyer, seller or both (the default).
	Role Role `json:"role,omitempty"`
	// Branding is how the partner portal shows the org. In an Update, the fields set
	// replace those fields (nil keeps the branding as it is).
	Branding *Branding `json:"branding,omitempty"`
}

// Create makes an org.
func (s *OrgService) Create(ctx context.Context, in OrgInput) (*Org, error) {
	var o Org
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs"), body: in, out: &o})
	return ptr(&o, err)
}

// List returns a page of orgs, newest first.
func (s *OrgService) List(ctx context.Context, opts *ListOptions) (*Page[Org], error) {
	return list[Org](ctx, s.c, path("orgs"), opts.values())
}

// All iterates over every org from opts.Cursor on.
func (s *OrgService) All(ctx context.Context, opts *ListOptions) iter.Seq2[Org, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Org], error) {
		o.Cursor = cursor
		return s.List(ctx, &o)
	})
}

// Get returns an org.
func (s *OrgService) Get(ctx context.Context, id string) (*Org, error) {
	var o Org
	_, err := s.c.do(ctx, request{method: http.MethodGet, path: path("orgs", id), out: &o})
	return ptr(&o, err)
}

// Update changes an org's name, role or branding.
func (s *OrgService) Update(ctx context.Context, id string, in OrgInput) (*Org, error) {
	var o Org
	_, err := s.c.do(ctx, request{method: http.MethodPatch, path: path("orgs", id), body: in, out: &o})
	return ptr(&o, err)
}

// Delete removes an org and everything in it.
func (s *OrgService) Delete(ctx context.Context, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: path("orgs", id)})
	return err
}

// KeyService manages an org's API keys.
type KeyService struct{ c *Client }

// Create makes an org API key named name. The reply's Key field holds its value, shown
// this once; only a hash is kept.
func (s *KeyService) Create(ctx context.Context, org, name string) (*Key, error) {
	var k Key
	_, err := s.c.do(ctx, request{method: http.MethodPost, path: path("orgs", org, "keys"),
		body: map[string]string{"name": name}, out: &k})
	return ptr(&k, err)
}

// List returns a page of an org's keys (without their values).
func (s *KeyService) List(ctx context.Context, org string, opts *ListOptions) (*Page[Key], error) {
	return list[Key](ctx, s.c, path("orgs", org, "keys"), opts.values())
}

// All iterates over every key of an org from opts.Cursor on.
func (s *KeyService) All(ctx context.Context, org string, opts *ListOptions) iter.Seq2[Key, error] {
	o := deref(opts)
	return all(ctx, o.Cursor, func(ctx context.Context, cursor string) (*Page[Key], error) {
		o.Cursor = cursor
		return s.List(ctx, org, &o)
	})
}

// Delete revokes a key.
func (s *KeyService) Delete(ctx context.Context, org, id string) error {
	_, err := s.c.do(ctx, request{method: http.MethodDelete, path: path("orgs", org, "keys", id)})
	return err
}

// ptr returns v, or nil with the error.
func ptr[T any](v *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// deref copies *p, or returns the zero T for nil, so iterators never change the caller's
// options.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
