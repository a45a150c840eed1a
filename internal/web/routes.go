package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var staticFS embed.FS

// routes declares every page and action. Reads are GET; every change is a POST from a
// form carrying the CSRF token.
func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	s.mux.Handle("GET "+Prefix+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))

	s.handle("GET "+Prefix+"signin", public, s.signinPage)
	s.handle("POST "+Prefix+"signin", public, s.signin)
	s.handle("POST "+Prefix+"signout", signedIn, s.signout)
	s.handle("GET "+Prefix+"{$}", signedIn, s.home)
	s.handle("GET "+Prefix+"switch", adminKey, s.switchOrg)
	s.handle("POST "+Prefix+"orgs", adminKey, s.createOrg)
	s.handle("GET "+Prefix+"portal/{token}", public, s.openPortal)
	s.handle("GET "+Prefix+"theme.css", public, s.themeCSS)

	o := Prefix + "orgs/{org}/"
	s.handle("GET "+o+"{$}", portalView, s.overview)

	s.handle("GET "+o+"endpoints", portalView, s.endpoints)
	s.handle("GET "+o+"endpoints/new", portalChange, s.newEndpoint)
	s.handle("POST "+o+"endpoints", portalChange, s.createEndpoint)
	s.handle("GET "+o+"endpoints/{id}", portalView, s.endpoint)
	s.handle("GET "+o+"endpoints/{id}/edit", portalChange, s.editEndpoint)
	s.handle("POST "+o+"endpoints/{id}/edit", portalChange, s.updateEndpoint)
	s.handle("POST "+o+"endpoints/{id}/active", portalChange, s.setActive)
	s.handle("POST "+o+"endpoints/{id}/delete", portalChange, s.deleteEndpoint)
	s.handle("POST "+o+"endpoints/{id}/test", portalChange, s.testEndpoint)
	s.handle("POST "+o+"endpoints/{id}/recover", portalChange, s.recoverEndpoint)
	s.handle("POST "+o+"endpoints/{id}/replay", portalChange, s.replayEndpoint)
	s.handle("GET "+o+"jobs/{id}", portalView, s.job)
	s.handle("POST "+o+"jobs/{id}/cancel", portalChange, s.cancelJob)
	s.handle("POST "+o+"transformation/test", portalChange, s.tryTransformation)
	s.handle("POST "+o+"endpoints/{id}/secrets", portalChange, s.addSecret)
	s.handle("POST "+o+"endpoints/{id}/secrets/rotate", portalChange, s.rotateSecret)
	s.handle("POST "+o+"endpoints/{id}/secrets/{sid}/expiry", portalChange, s.secretExpiry)
	s.handle("POST "+o+"endpoints/{id}/secrets/{sid}/delete", portalChange, s.deleteSecret)

	s.handle("GET "+o+"deliveries", portalView, s.deliveries)
	s.handle("GET "+o+"deliveries/{id}", portalView, s.delivery)
	s.handle("POST "+o+"deliveries/{id}/retry", portalChange, s.retryDelivery)
	s.handle("GET "+o+"events", portalView, s.events)
	s.handle("GET "+o+"events/{id}", portalView, s.event)

	s.handle("GET "+o+"event-types", portalView, s.catalog)
	s.handle("GET "+o+"event-types/{name}", portalView, s.catalogType)

	s.handle("GET "+o+"sources", orgPage, s.sourceList)
	s.handle("GET "+o+"sources/new", orgPage, s.newSource)
	s.handle("POST "+o+"sources", orgPage, s.createSource)
	s.handle("GET "+o+"sources/{id}", orgPage, s.source)
	s.handle("POST "+o+"sources/{id}/rotate", orgPage, s.rotateSourceToken)
	s.handle("POST "+o+"sources/{id}/delete", orgPage, s.deleteSource)

	s.handle("GET "+o+"portal", orgPage, s.portalSettings)
	s.handle("POST "+o+"branding", orgPage, s.saveBranding)
	s.handle("POST "+o+"portal-links", orgPage, s.createPortalLink)

	s.handle("GET "+o+"keys", orgPage, s.keys)
	s.handle("POST "+o+"keys", orgPage, s.createKey)
	s.handle("POST "+o+"keys/{id}/delete", orgPage, s.deleteKey)

	s.handle(Prefix, public, s.notFound)
}
