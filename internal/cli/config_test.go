package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"
)

// parseServe parses a serve command line the way Run does, without serving.
func parseServe(tb testing.TB, args ...string) (*serveCmd, error) {
	tb.Helper()
	var root struct {
		Serve serveCmd `cmd:""`
	}
	p, err := kong.New(&root, kong.Configuration(configFile), kong.Exit(func(int) { tb.Fatal("exit") }))
	require.NoError(tb, err)
	_, err = p.Parse(append([]string{"serve"}, args...))
	return &root.Serve, err
}

func writeConfig(tb testing.TB, text string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "consign.json")
	require.NoError(tb, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func TestConfigFilePrecedence(t *testing.T) {
	// Not parallel: it sets environment variables.
	path := writeConfig(t, `{"addr": ":9000", "public_url": "https://hooks.example.com", "insecure-targets": true, "log_format": "json", "data": "/from/file"}`)

	c, err := parseServe(t, "--config", path)
	require.NoError(t, err)
	require.Equal(t, ":9000", c.Addr, "file value used")
	require.Equal(t, "https://hooks.example.com", c.PublicURL)
	require.True(t, c.InsecureTargets)
	require.Equal(t, "json", c.LogFormat)

	t.Setenv("CONSIGN_DATA", "/from/env")
	c, err = parseServe(t, "--config", path, "--addr", ":9100", "--log-format", "text")
	require.NoError(t, err)
	require.Equal(t, ":9100", c.Addr, "a flag overrides the file")
	require.Equal(t, "text", c.LogFormat, "a flag overrides the file")
	require.Equal(t, "/from/env", c.Data, "the environment overrides the file")
	require.Equal(t, "https://hooks.example.com", c.PublicURL, "the rest still from the file")

	t.Setenv("CONSIGN_CONFIG", path)
	c, err = parseServe(t)
	require.NoError(t, err)
	require.Equal(t, ":9000", c.Addr, "CONSIGN_CONFIG names the file too")
}

func TestConfigFileErrors(t *testing.T) {
	t.Parallel()
	_, err := parseServe(t, "--config", writeConfig(t, `{"adr": ":9000"}`))
	require.ErrorContains(t, err, `unknown setting "adr"`)
	_, err = parseServe(t, "--config", writeConfig(t, `{"addr": `))
	require.ErrorContains(t, err, "config file")
	_, err = parseServe(t, "--config", filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
}

func TestNoConfigFileKeepsDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseServe(t)
	require.NoError(t, err)
	require.Equal(t, ":8700", c.Addr)
}

func TestEgressProxySetting(t *testing.T) {
	// Not parallel: it sets environment variables.
	c, err := parseServe(t, "--config", writeConfig(t, `{"egress_proxy": "http://10.0.0.5:3128"}`))
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.5:3128", c.EgressProxy, "from the file")
	t.Setenv("CONSIGN_EGRESS_PROXY", "http://10.0.0.6:3128")
	c, err = parseServe(t)
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.6:3128", c.EgressProxy, "from the environment")
	c, err = parseServe(t, "--egress-proxy", "http://10.0.0.7:3128")
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.7:3128", c.EgressProxy, "a flag overrides")
}

func TestUIFrameAncestorsSetting(t *testing.T) {
	// Not parallel: it sets environment variables.
	c, err := parseServe(t, "--config", writeConfig(t, `{"ui_frame_ancestors": "https://app.example.com https://*.shop.example"}`))
	require.NoError(t, err)
	require.Equal(t, []string{"https://app.example.com", "https://*.shop.example"}, c.frameAncestors(), "from the file")
	t.Setenv("CONSIGN_UI_FRAME_ANCESTORS", "https://a.example, https://b.example")
	c, err = parseServe(t)
	require.NoError(t, err)
	require.Equal(t, []string{"https://a.example", "https://b.example"}, c.frameAncestors(), "from the environment, commas too")
	c, err = parseServe(t, "--ui-frame-ancestors", "https://c.example")
	require.NoError(t, err)
	require.Equal(t, []string{"https://c.example"}, c.frameAncestors(), "a flag overrides")
}
