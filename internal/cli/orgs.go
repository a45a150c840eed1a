package cli

import (
	"fmt"
	"io"

	"github.com/consign-dev/consign/client"
)

type orgsCmd struct {
	List   orgsListCmd   `cmd:"" help:"List orgs, newest first."`
	Create orgsCreateCmd `cmd:"" help:"Create an org."`
	Get    orgsGetCmd    `cmd:"" help:"Show an org."`
	Update orgsUpdateCmd `cmd:"" help:"Rename an org or change its role."`
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
}

func (c *orgsUpdateCmd) Run(env *runEnv) error {
	s, err := c.open(env)
	if err != nil {
		return err
	}
	o, err := s.Orgs.Update(env.ctx, c.ID, client.OrgInput{Name: c.Name, Role: client.Role(c.Role)})
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
