package app

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTracerFromEnv(t *testing.T) {
	// Not parallel: it sets environment variables.
	for _, v := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(v, "")
	}
	ctx := context.Background()
	tp, _, err := tracerFromEnv(ctx)
	require.NoError(t, err)
	require.Nil(t, tp, "off without an endpoint")

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	tp, shutdown, err := tracerFromEnv(ctx)
	require.NoError(t, err)
	require.NotNil(t, tp, "on with an endpoint")
	require.NoError(t, shutdown(ctx))

	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	tp, _, err = tracerFromEnv(ctx)
	require.NoError(t, err)
	require.Nil(t, tp, "off with OTEL_TRACES_EXPORTER=none")

	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	_, _, err = tracerFromEnv(ctx)
	require.ErrorContains(t, err, "otlp only")

	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	_, _, err = tracerFromEnv(ctx)
	require.ErrorContains(t, err, "http/protobuf only")
}
