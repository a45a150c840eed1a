package sender

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// The egress proxy (Config.EgressProxy): every connection to a target goes through an
// HTTP CONNECT tunnel, so that partners can allow-list the proxy's fixed address. The
// target rules are still judged on the target: its name is resolved here, each address
// checked by the guard, and the tunnel opened to the checked address (not the name, which
// the proxy could resolve elsewhere). The proxy itself is the operator's choice and may
// be private or loopback; it is dialed without the guard.

// egress is the proxy's settings.
type egress struct {
	addr   string // host:port
	auth   string // Proxy-Authorization value, or ""
	dialer *net.Dialer
}

// parseEgressProxy checks an egress proxy URL: http://[user:pass@]host:port.
func parseEgressProxy(raw string) (*egress, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("EgressProxy %q: %w", raw, unwrapURLError(err))
	}
	if u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("EgressProxy %q must be http://host:port (an HTTP CONNECT proxy)", raw)
	}
	e := &egress{addr: u.Host}
	if u.User != nil {
		p, _ := u.User.Password()
		e.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+p))
	}
	return e, nil
}

// dialTarget opens a TCP connection to addr (the target's host:port): directly
// through the guarded dialer, or through the egress proxy's tunnel.
func (s *Sender) dialTarget(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.egress == nil {
		return s.dialer.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if s.guard != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		pn, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", port, err)
		}
		for _, ip := range ips {
			ap := netip.AddrPortFrom(ip.Unmap(), uint16(pn))
			nw := "tcp4"
			if !ap.Addr().Is4() {
				nw = "tcp6"
			}
			if err := s.control(nw, ap.String(), nil); err != nil {
				return nil, err
			}
		}
		addr = netip.AddrPortFrom(ips[0].Unmap(), uint16(pn)).String()
	}
	return s.egress.connect(ctx, addr)
}

// connect opens a CONNECT tunnel through the proxy to addr.
func (e *egress) connect(ctx context.Context, addr string) (net.Conn, error) {
	nc, err := e.dialer.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, fmt.Errorf("egress proxy %s: %w", e.addr, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(e.dialer.Timeout)
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if e.auth != "" {
		req += "Proxy-Authorization: " + e.auth + "\r\n"
	}
	if _, err := nc.Write([]byte(req + "\r\n")); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("egress proxy %s: %w", e.addr, err)
	}
	br := bufio.NewReaderSize(nc, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("egress proxy %s: reading its answer to CONNECT: %w", e.addr, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = nc.Close()
		return nil, errors.New("egress proxy " + e.addr + " refused CONNECT " + addr + ": " + resp.Status)
	}
	if br.Buffered() > 0 {
		_ = nc.Close()
		return nil, errors.New("egress proxy " + e.addr + " sent bytes after its answer to CONNECT")
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}
