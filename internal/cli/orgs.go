package cli

import (
	"fmt"
	"io"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/client"
)

type orgsCmd struct {
	List   orgsListCmd   `cmd:"" help:"List orgs, newest first."`
	Create orgsCreateCmd `cmd:"" help:"Create an org."`
	Get    orgsGetCmd    `cmd:"" help:"Show an org."`
	Update orgsUpdateCmd `cmd:"" help:"Rename an org, change its role or its partner portal branding."`
	Delete orgsDeleteCmd `cmd:"" help:"Delete an org and everything in it."`
}

type orgsListCmd struct {
	remote
	pageFlags
}

func (c *orgsListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Orgs.List(env.ctx, c.options())
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "ROLE", "CREATED", "NAME")
		for _, o := range page.Data {
			t.row(o.ID, o.Role, o.CreatedAt, o.Name)
		}
		t.flush()
	})
}

type orgsCreateCmd struct {
	remote
	Name string `arg:"" help:"The org's name."`
	Role string `enum:"buyer,seller,both" default:"both" help:"buyer, seller or both: limits the topics its endpoints may take."`
}

func (c *orgsCreateCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	o, err := s.Orgs.Create(env.ctx, client.OrgInput{Name: c.Name, Role: client.Role(c.Role)})
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showOrg(w, o) })
}

type orgsGetCmd struct {
	remote
	ID string `arg:"" help:"The org's id."`
}

func (c *orgsGetCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	o, err := s.Orgs.Get(env.ctx, c.ID)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showOrg(w, o) })
}

type orgsUpdateCmd struct {
	remote
	ID   string `arg:"" help:"The org's id."`
	Name string `help:"A new name."`
	Role string `help:"A new role: buyer, seller or both."`
	// Pointers: a flag given empty clears the field; a flag not given keeps it.
	BrandName  *string `name:"brand-name" help:"The name the partner portal's header shows (at most 80 characters; empty clears it)."`
	BrandLogo  *string `name:"brand-logo" help:"The portal's logo: an https:// URL of an image, or a data:image/…;base64 URL of at most 32 KiB (empty clears it)."`
	BrandColor *string `name:"brand-color" help:"The portal header's colour as #rrggbb (empty clears it)."`
}

func (c *orgsUpdateCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	in := client.OrgInput{Name: c.Name, Role: client.Role(c.Role)}
	if c.BrandName != nil || c.BrandLogo != nil || c.BrandColor != nil {
		// The API replaces the fields given and keeps the others: fill in the current ones.
		cur, err := s.Orgs.Get(env.ctx, c.ID)
		if err != nil {
			return s.fail(err)
		}
		b := client.Branding{}
		if cur.Branding != nil {
			b = *cur.Branding
		}
		for _, f := range []struct{ flag, field *string }{{c.BrandName, &b.Name}, {c.BrandLogo, &b.LogoURL}, {c.BrandColor, &b.Color}} {
			if f.flag != nil {
				*f.field = *f.flag
			}
		}
		in.Branding = &b
	}
	o, err := s.Orgs.Update(env.ctx, c.ID, in)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) { showOrg(w, o) })
}

type orgsDeleteCmd struct {
	remote
	ID string `arg:"" help:"The org's id."`
}

func (c *orgsDeleteCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	if err := s.Orgs.Delete(env.ctx, c.ID); err != nil {
		return s.fail(err)
	}
	return s.done("deleted %s", c.ID)
}

func showOrg(w io.Writer, o *client.Org) {
	fields(w, "id", o.ID, "name", o.Name, "role", o.Role, "created_at", o.CreatedAt, "updated_at", o.UpdatedAt)
	if b := o.Branding; b != nil {
		logo := b.LogoURL
		if len(logo) > 60 {
			logo = logo[:57] + "..." // a data: logo is long
		}
		fields(w, "brand_name", b.Name, "brand_logo", logo, "brand_color", b.Color)
	}
}

type portalLinksCmd struct {
	Create portalLinksCreateCmd `cmd:"" help:"Make a one-time portal link for an org; its URL is shown once."`
}

type portalLinksCreateCmd struct {
	remote
	orgFlag
	ExpiresIn string `default:"1h" help:"How long the link may be opened: 1m to 168h (7 days)."`
	ReadOnly  bool   `help:"The portal shows everything and changes nothing."`
}

func (c *portalLinksCreateCmd) Run(env *runEnv) error {
	d, err := consign.ParseDuration(c.ExpiresIn)
	if err != nil {
		return codeError{2, fmt.Errorf("--expires-in %q: want a duration such as 30m or 24h", c.ExpiresIn)}
	}
	s, err := c.open(env)
	if err != nil {
		return err
	}
	ttl := client.Duration(d)
	l, err := s.PortalLinks.Create(env.ctx, c.Org, client.PortalLinkInput{ExpiresIn: &ttl, ReadOnly: c.ReadOnly})
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		fields(w, "url", l.URL, "expires_at", l.ExpiresAt, "read_only", l.ReadOnly)
		fmt.Fprintln(w, "\nThe link opens the portal once and is shown this once: send the partner's browser to it.")
	})
}

type keysCmd struct {
	List   keysListCmd   `cmd:"" help:"List an org's API keys (not their values)."`
	Create keysCreateCmd `cmd:"" help:"Create an org API key; its value is shown once."`
	Delete keysDeleteCmd `cmd:"" help:"Revoke an API key."`
}

type keysListCmd struct {
	remote
	orgFlag
	pageFlags
}

func (c *keysListCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	page, err := s.Keys.List(env.ctx, c.Org, c.options())
	if err != nil {
		return s.fail(err)
	}
	return s.printList(page.NextCursor, func(w io.Writer) {
		t := newTable(w, "ID", "CREATED", "NAME")
		for _, k := range page.Data {
			t.row(k.ID, k.CreatedAt, k.Name)
		}
		t.flush()
	})
}

type keysCreateCmd struct {
	remote
	orgFlag
	Name string `help:"What the key is for, such as the system that uses it."`
}

func (c *keysCreateCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	k, err := s.Keys.Create(env.ctx, c.Org, c.Name)
	if err != nil {
		return s.fail(err)
	}
	return s.print(func(w io.Writer) {
		fields(w, "id", k.ID, "org_id", k.OrgID, "name", k.Name, "created_at", k.CreatedAt, "key", k.Key)
		fmt.Fprintln(w, "\nThe key is shown this once; store it now.")
	})
}

type keysDeleteCmd struct {
	remote
	orgFlag
	ID string `arg:"" help:"The key's id."`
}

func (c *keysDeleteCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	if err := s.Keys.Delete(env.ctx, c.Org, c.ID); err != nil {
		return s.fail(err)
	}
	return s.done("deleted %s", c.ID)
}
