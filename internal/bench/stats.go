package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The event types the bench publishes (Config.Type): the built-in commerce type users
// publish most, checked against its schema, and a type of the bench's own without one.
const (
	TypeOrder  = "order.fulfilled"
	TypeCustom = "custom"
)

// customType is the name of the schema-less type published with --type custom.
const customType = "bench.event"

// Payload shapes: each a JSON object whose "pad" string is filled to the size asked for.
// The order is valid against order.fulfilled's schema (an id, line items and
// fulfillments, each an object) and reads as an order a platform would send; both carry
// "bench" and "pad", which the filter scenario looks at.
const (
	customHead = `{"bench":"consign","pad":"`
	orderHead  = `{"id":"ord_10442","name":"#10442","currency":"EUR","total":"129.90",` +
		`"lineItems":[{"id":"li_1","sku":"SKU-RED-M","quantity":2,"price":"39.95"},{"id":"li_2","sku":"SKU-BLU-L","quantity":1,"price":"50.00"}],` +
		`"fulfillments":[{"id":"ful_7","status":"success","tracking_company":"DHL","tracking_number":"JD014600006281234567","line_item_ids":["li_1","li_2"]}],` +
		`"bench":"consign","pad":"`
	payloadTail = `"}`
)

// minPayload is the smallest payload the bench can shape as a padded JSON object of typ.
func minPayload(typ string) int {
	if typ == TypeOrder {
		return len(orderHead) + len(payloadTail)
	}
	return len(customHead) + len(payloadTail)
}

// publishedType is the event type name the bench publishes for Config.Type typ.
func publishedType(typ string) string {
	if typ == TypeCustom {
		return customType
	}
	return typ
}

// payload returns a JSON object of typ's shape of exactly size bytes (size ≥
// minPayload(typ)).
func payload(size int, typ string) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	head := customHead
	if typ == TypeOrder {
		head = orderHead
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	for i := 0; len(b) < size-len(payloadTail); i++ {
		b = append(b, alphabet[(i*7+i/len(alphabet))%len(alphabet)])
	}
	return append(b, payloadTail...)
}

// singleBody is the body of POST …/events for one event of type name with payload p.
func singleBody(name string, p []byte) []byte {
	var b bytes.Buffer
	writeEvent(&b, name, p)
	return b.Bytes()
}

func writeEvent(b *bytes.Buffer, name string, p []byte) {
	b.WriteString(`{"type":"` + name + `","payload":`)
	b.Write(p)
	b.WriteByte('}')
}

func batchBody(name string, p []byte, n int) []byte {
	var b bytes.Buffer
	b.Grow(n*(len(p)+len(name)+24) + 16)
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		writeEvent(&b, name, p)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// batches are the bodies of n events in batches of size: count bodies, all full but
// perhaps the last. Built once; every request reads the same bytes.
type batches struct {
	full, rest         []byte
	size, count, restN int
}

func newBatches(typ string, payloadSize, size, n int) *batches {
	p, name := payload(payloadSize, typ), publishedType(typ)
	b := &batches{size: size, count: (n + size - 1) / size, restN: n % size}
	if n >= size {
		b.full = batchBody(name, p, size)
	}
	if b.restN > 0 {
		b.rest = batchBody(name, p, b.restN)
	}
	return b
}

// get returns batch i's body and its number of events.
func (b *batches) get(i int) ([]byte, int) {
	if i == b.count-1 && b.restN > 0 {
		return b.rest, b.restN
	}
	return b.full, b.size
}

// rate is n per second over d; 0 when d is not positive.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted values by nearest
// rank: the smallest value with at least p % of all values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// percentiles returns p50, p99 and the maximum of ds in milliseconds (ds is sorted in
// place).
func percentiles(ds []time.Duration) (p50, p99, maxMS float64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(ds[len(ds)-1])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// commas writes n with thousands separators: 46100 → "46,100".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// readMemory reads VmRSS and VmHWM (bytes) from a /proc/<pid>/status file.
func readMemory(path string) (rss, hwm int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read memory: %s: %q", name, value)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("read memory: no VmRSS/VmHWM in %s", path)
	}
	return rss, hwm, nil
}
