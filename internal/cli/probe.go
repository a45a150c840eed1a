package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/consign-dev/consign/internal/probe"
)

// probeCmd runs internal/probe against a running server.
type probeCmd struct {
	Server      string        `env:"CONSIGN_URL" default:"http://127.0.0.1:8700" help:"Base URL of the Consign server."`
	Key         string        `env:"CONSIGN_KEY" help:"The server's admin key: the probe makes two orgs of its own and deletes them at the end."`
	SlowBody    time.Duration `default:"30s" help:"Also send a body a byte every 2 s and expect it cut within this time; 0 skips it."`
	PrivateName []string      `name:"private-name" sep:"none" help:"A host name that resolves to a non-public address where the server runs, for the SSRF checks (repeat)."`
}

func (c *probeCmd) Run(env *runEnv) error {
	if c.Key == "" {
		return codeError{2, errors.New("no admin key: set CONSIGN_KEY or pass --key")}
	}
	if !strings.HasPrefix(c.Server, "http://") && !strings.HasPrefix(c.Server, "https://") {
		return codeError{2, fmt.Errorf("--server %q: want a URL such as http://127.0.0.1:8700", c.Server)}
	}
	rep, err := probe.Run(env.ctx, probe.Config{URL: c.Server, AdminKey: c.Key, SlowBody: c.SlowBody, PrivateNames: c.PrivateName})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "bad inputs: %d\ncross-org requests: %d\nSSRF targets: %d (%d host names accepted, none of whose test sends got a response)\ntook: %s\nfindings: %d\n",
		rep.Inputs, rep.Isolation, rep.SSRF, rep.Blocked, rep.Took.Round(100*time.Millisecond), len(rep.Findings))
	for _, f := range rep.Findings {
		fmt.Fprintln(env.stdout, f)
	}
	if len(rep.Findings) > 0 {
		return codeError{1, fmt.Errorf("the probe found %d problems", len(rep.Findings))}
	}
	return nil
}
