package manage

import (
	"context"
	"math"
	"time"

	"github.com/consign-dev/consign"
	"github.com/consign-dev/consign/internal/store"
)

// AnnounceExpiringCertificates emits consign.endpoint.certificate_expiring for each
// endpoint, in every org, whose client certificate's not_after is within
// consign.CertificateExpiringBefore of now, once per certificate: the certificate's
// fingerprint is recorded on the endpoint before the event is emitted, so a later run,
// a restart or another node does not announce it again, and a new certificate is
// announced afresh. It returns how many it announced.
func (s *Service) AnnounceExpiringCertificates(ctx context.Context) (int, error) {
	now := s.now()
	announced := 0
	p := store.Page{Limit: 500}
	for {
		orgs, err := s.store.OrgList(ctx, p)
		if err != nil {
			return announced, err
		}
		for _, o := range orgs {
			rows, err := s.store.EndpointListAll(ctx, o.ID)
			if err != nil {
				return announced, err
			}
			for _, row := range rows {
				t := row.TLS
				if t == nil || t.NotAfter == nil || t.Fingerprint == "" || row.TLSExpiryNotified == t.Fingerprint ||
					t.NotAfter.Sub(now) > consign.CertificateExpiringBefore {
					continue
				}
				row.TLSExpiryNotified = t.Fingerprint
				if err := s.store.EndpointUpdate(ctx, row); err != nil {
					if consign.ErrorCode(err) == consign.ENOTFOUND {
						continue
					}
					return announced, err
				}
				s.emit(ctx, row.OrgID, consign.TypeCertificateExpiring, map[string]any{
					"endpoint_id": row.ID, "org_id": row.OrgID, "url": row.URL,
					"subject": t.Subject, "issuer": t.Issuer, "not_after": t.NotAfter.UTC().Format(time.RFC3339),
					"days_left": int(math.Floor(t.NotAfter.Sub(now).Hours() / 24)),
				})
				announced++
			}
		}
		if len(orgs) < p.Limit {
			return announced, nil
		}
		p.Cursor = orgs[len(orgs)-1].ID
	}
}
