package dispatch

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/signing"
	"github.com/consign-dev/consign/internal/store"
)

// authenticate is the authenticate-and-sign stage: it adds the attempt's proof of
// origin to its headers: the endpoint's credential, chosen by its auth type, and its
// signature, chosen by its signature scheme (a token endpoint is not signed). It
// returns why the attempt must not be sent when the proof cannot be made: no secret to
// sign with (the receiver could not tell the request from a forgery), or no OAuth 2.0
// access token. (A failed attempt, retried on the endpoint's schedule, so that adding a
// secret or mending the token endpoint resumes delivery.) Each auth type and each
// signature scheme is one function below.
func (d *Dispatcher) authenticate(ctx context.Context, hs *headerSet, ep *endpointEntry, c *store.Claim, body []byte, now time.Time) (refusal string) {
	e := ep.endpoint
	switch e.Auth.Type {
	case consign.AuthToken:
		hs.set("Auth", e.Auth.Token)
		return "" // not signed: ReadyCloud checks the token alone
	case consign.AuthBasic:
		hs.set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(e.Auth.Username+":"+e.Auth.Password)))
	case consign.AuthBearer:
		hs.set("Authorization", "Bearer "+e.Auth.Token)
	case consign.AuthOAuth2:
		tok, err := d.tokens.token(ctx, c.EndpointID, &e.Auth)
		if err != nil {
			return "not sent: no OAuth 2.0 access token: " + err.Error()
		}
		hs.set("Authorization", "Bearer "+tok)
	}
	switch e.Signature.Scheme {
	case consign.SignatureNone:
		return ""
	case consign.SignatureHMACSHA256:
		return signHMAC(hs, &e.Signature, ep.keysAt(now), c, body, now)
	default:
		return signStandard(hs, ep.keysAt(now), c, body, now)
	}
}

// signStandard adds the Standard Webhooks signature of "{id}.{timestamp}.{body}" by
// every key that signs at now.
func signStandard(hs *headerSet, keys []signing.Key, c *store.Claim, body []byte, now time.Time) string {
	if len(keys) == 0 {
		return noSecret(c)
	}
	hs.set("Webhook-Signature", signing.Header(keys, c.EventID, now.Unix(), body))
	return ""
}

// signHMAC adds an hmac-sha256 signature in the partner's format: the HMAC of the body
// or of "{timestamp}.{body}", keyed with the newest active whsec_ secret (a receiver of
// these formats checks one value; after a rotation the new secret signs at once),
// encoded, after the prefix, in the partner's header.
func signHMAC(hs *headerSet, sig *consign.Signature, keys []signing.Key, c *store.Claim, body []byte, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	for i := len(keys) - 1; i >= 0; i-- {
		var sum []byte
		var ok bool
		if sig.Signed == consign.SignedTimestampBody {
			sum, ok = keys[i].HMACText([]byte(ts), []byte{'.'}, body)
		} else {
			sum, ok = keys[i].HMACText(body)
		}
		if !ok {
			continue // an ed25519 key makes no HMAC
		}
		enc := hex.EncodeToString(sum)
		if sig.Encoding == consign.EncodingBase64 {
			enc = base64.StdEncoding.EncodeToString(sum)
		}
		hs.set(sig.Header, sig.Prefix+enc)
		if sig.TimestampHeader != "" {
			hs.set(sig.TimestampHeader, ts)
		}
		return ""
	}
	if len(keys) > 0 {
		return "not sent: the endpoint signs with hmac-sha256 and has no active whsec_ secret (an ed25519 key cannot make an HMAC); add one with POST …/endpoints/" + c.EndpointID + "/secrets"
	}
	return noSecret(c)
}

func noSecret(c *store.Claim) string {
	return "not sent: the endpoint has no active signing secret; add one with POST …/endpoints/" + c.EndpointID + "/secrets"
}
