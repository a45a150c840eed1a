package metrics

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/consign-dev/consign/internal/store"
)

// TestStoreTimesEveryMethod fails when the Store interface gained a method that the
// generated decorator does not time: run go generate ./internal/metrics.
func TestStoreTimesEveryMethod(t *testing.T) {
	t.Parallel()
	st := reflect.TypeFor[store.Store]()
	ctx := reflect.TypeFor[context.Context]()
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Type.NumIn() == 0 || m.Type.In(0) != ctx {
			continue
		}
		if !slices.Contains(storeMethods, m.Name) {
			t.Errorf("store.Store.%s is not timed; run go generate ./internal/metrics", m.Name)
		}
	}
}
