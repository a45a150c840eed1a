package sender_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/consign-dev/consign/internal/cputime"
	"github.com/consign-dev/consign/internal/sender"
)

// benchReceiver answers like a typical receiver: reads the body, replies
// 200 with a short JSON body.
func benchReceiver(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchRequest(url string) sender.Request {
	h := http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        {"Consign-Webhooks/1.0"},
		"Webhook-Id":        {"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
		"Webhook-Timestamp": {"1674087231"},
		"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
	}
	return sender.Request{URL: url, Header: h, Body: bytes.Repeat([]byte("x"), 1024)}
}

// benchSetup starts a receiver and a Sender for it, and returns the request
// to send.
func benchSetup(b *testing.B) (*sender.Sender, sender.Request) {
	srv := benchReceiver(b)
	s := sender.New(sender.Config{InsecureTargets: true})
	b.Cleanup(s.Close)
	req := benchRequest(srv.URL)
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Body)))
	return s, req
}

// BenchmarkSend measures one delivery of a 1 KiB body over a kept-alive
// loopback connection, send and receive side in the same process (the
// allocations include the httptest server's).
func BenchmarkSend(b *testing.B) {
	s, req := benchSetup(b)
	ctx := b.Context()
	for b.Loop() {
		if out := s.Send(ctx, req); out.Class != sender.Success {
			b.Fatal(out.Err)
		}
	}
}

// BenchmarkSendParallel is BenchmarkSend with 16 sends in flight per CPU
// sharing one Sender (and its connection pool), as the dispatcher's windows
// keep them.
func BenchmarkSendParallel(b *testing.B) {
	s, req := benchSetup(b)
	ctx := b.Context()
	// CPU per op (both sides, all threads) is the figure to compare: ns/op moves
	// with how the scheduler spreads the two sides over the cores.
	before, ok := cputime.Process()
	b.Cleanup(func() {
		if after, _ := cputime.Process(); ok {
			b.ReportMetric(float64(after-before)/float64(b.N), "cpu-ns/op")
		}
	})
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := s.Send(ctx, req); out.Class != sender.Success {
				b.Error(out.Err)
				return
			}
		}
	})
}
