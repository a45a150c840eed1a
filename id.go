package consign

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// ID prefixes, one per kind of object.
const (
	PrefixOrg      = "org_"
	PrefixKey      = "key_"
	PrefixEndpoint = "ep_"
	PrefixSecret   = "sec_"
	PrefixEvent    = "evt_"
	PrefixDelivery = "dlv_"
	PrefixSource   = "src_"
	PrefixReceipt  = "rcp_"
	PrefixJob      = "job_"
	PrefixPortal   = "prt_"
)

// crockford is the Crockford base32 alphabet: sortable as plain ASCII, no I, L, O, U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns prefix followed by 26 characters: 48 bits of milliseconds since the
// epoch then 80 random bits, in Crockford base32 (the ULID layout). IDs therefore sort
// by creation time, which keyset pagination relies on. Within one millisecond the
// process hands out increasing IDs (the previous one's random bits plus one), so that
// objects created in the same millisecond still list in the order they were made; that
// holds for the latest millisecond asked for, which with the real clock is the present.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	ts := uint64(now.UnixMilli())
	idSeq.Lock()
	switch {
	case ts == idSeq.ms && idSeq.lo != ^uint64(0):
		idSeq.lo++
		binary.BigEndian.PutUint64(b[:8], ts<<16|uint64(idSeq.hi))
		binary.BigEndian.PutUint64(b[8:], idSeq.lo)
	default:
		binary.BigEndian.PutUint64(b[:8], ts<<16)
		_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails on supported platforms
		// A time before the latest one asked for leaves the sequence where it is.
		if ts > idSeq.ms {
			idSeq.ms, idSeq.hi, idSeq.lo = ts, binary.BigEndian.Uint16(b[6:8]), binary.BigEndian.Uint64(b[8:])
		}
	}
	idSeq.Unlock()
	var sb strings.Builder
	sb.Grow(len(prefix) + 26)
	sb.WriteString(prefix)
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var digits [26]byte
	for i := 25; i >= 0; i-- {
		digits[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	sb.Write(digits[:])
	return sb.String()
}

// idSeq is the last ID's millisecond and random bits (16 high, 64 low).
var idSeq struct {
	sync.Mutex
	ms uint64
	hi uint16
	lo uint64
}

// HasPrefix reports whether id looks like an ID of the given kind.
func HasPrefix(id, prefix string) bool {
	return len(id) == len(prefix)+26 && strings.HasPrefix(id, prefix)
}
