package consign_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/consign-dev/consign"
)

// TestHTTPStatus: every code has its status, and a code the table does not know (a
// typo, a code added without a status) answers 500 rather than 0, which
// http.ResponseWriter.WriteHeader refuses with a panic.
func TestHTTPStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code string
		want int
	}{
		{consign.EBADREQUEST, http.StatusBadRequest},
		{consign.EINVALID, http.StatusUnprocessableEntity},
		{consign.ENOTFOUND, http.StatusNotFound},
		{consign.ECONFLICT, http.StatusConflict},
		{consign.EUNAUTHORIZED, http.StatusUnauthorized},
		{consign.EFORBIDDEN, http.StatusForbidden},
		{consign.ETOOLARGE, http.StatusRequestEntityTooLarge},
		{consign.EMETHOD, http.StatusMethodNotAllowed},
		{consign.ETIMEOUT, http.StatusRequestTimeout},
		{consign.ELIMIT, http.StatusTooManyRequests},
		{consign.EUNAVAILABLE, http.StatusServiceUnavailable},
		{consign.EINTERNAL, http.StatusInternalServerError},
		{"no_such_code", http.StatusInternalServerError},
		{"", http.StatusInternalServerError},
	} {
		require.Equal(t, tc.want, consign.HTTPStatus(tc.code), "code %q", tc.code)
	}
	err := fmt.Errorf("wrapped: %w", consign.Errorf(consign.ECONFLICT, "exists"))
	require.Equal(t, http.StatusConflict, consign.HTTPStatus(consign.ErrorCode(err)))
	require.Equal(t, http.StatusInternalServerError, consign.HTTPStatus(consign.ErrorCode(fmt.Errorf("disk full"))))
}
