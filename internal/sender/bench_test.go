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

func benchRequest(url string, complete bool) sender.Request {
	h := http.Header{
		"Content-Type":      {"application/json"},
		"Webhook-Id":        {"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
		"Webhook-Timestamp": {"1674087231"},
		"Webhook-Signature": {"v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
	}
	if complete {
		// Headers the Sender would otherwise add to a copy of the map.
		h["User-Agent"] = []string{"Consign-Webhooks/1.0"}
		h["Idempotency-Key"] = nil
	}
	return sender.Request{URL: url, Header: h, Body: bytes.Repeat([]byte("x"), 1024)}
}

// BenchmarkSend measures one delivery of a 1 KiB body over a kept-alive
// loopback connection, send and receive side in the same process (the
// allocations include the httptest server's).
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		complete bool
	}{{"caller-sets-all-headers", true}, {"sender-adds-headers", false}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := benchReceiver(b)
			s := sender.New(sender.Config{InsecureTargets: true})
			b.Cleanup(s.Close)
			req := benchRequest(srv.URL, bc.complete)
			ctx := b.Context()
			b.ReportAllocs()
			b.SetBytes(int64(len(req.Body)))
			for b.Loop() {
				if out := s.Send(ctx, req); out.Class != sender.Success {
					b.Fatal(out.Err)
				}
			}
		})
	}
}

// BenchmarkSendParallel is BenchmarkSend with concurrent senders sharing
// one Sender (and its connection pool).
func BenchmarkSendParallel(b *testing.B) {
	srv := benchReceiver(b)
	s := sender.New(sender.Config{InsecureTargets: true})
	b.Cleanup(s.Close)
	req := benchRequest(srv.URL, true)
	ctx := b.Context()
	b.ReportAllocs()
	b.SetBytes(int64(len(req.Body)))
	// CPU per op (both sides, all threads) is the figure to compare: ns/op moves
	// with how the scheduler spreads the two sides over the cores.
	before, ok := cputime.Process()
	b.Cleanup(func() {
		if after, _ := cputime.Process(); ok {
			b.ReportMetric(float64(after-before)/float64(b.N), "cpu-ns/op")
		}
	})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := s.Send(ctx, req); out.Class != sender.Success {
				b.Error(out.Err)
				return
			}
		}
	})
}
