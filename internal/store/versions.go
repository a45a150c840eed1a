package store

import (
	"encoding/json"
	"fmt"

	"github.com/consign-dev/consign"
)

// EncodeVersions returns the JSON document drivers keep an event type's versions in
// (nil when there are none).
func EncodeVersions(vs []consign.EventTypeVersion) json.RawMessage {
	if len(vs) == 0 {
		return nil
	}
	b, _ := json.Marshal(vs)
	return b
}

// DecodeVersions reads what EncodeVersions wrote.
func DecodeVersions(doc []byte) ([]consign.EventTypeVersion, error) {
	var vs []consign.EventTypeVersion
	if err := json.Unmarshal(doc, &vs); err != nil {
		return nil, fmt.Errorf("versions: %w", err)
	}
	for i := range vs {
		vs[i].CreatedAt = vs[i].CreatedAt.UTC()
	}
	return vs, nil
}
