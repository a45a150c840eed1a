package bizkey

// FromValue returns the keys of a payload decoded whole, as encoding/json decodes it
// into an any with UseNumber: the reference FromDoc is held to.
func (s *Set) FromValue(payload any) []string {
	m, _ := payload.(map[string]any)
	return s.find(func(key string) (any, bool) {
		v, ok := m[key]
		return v, ok
	})
}
