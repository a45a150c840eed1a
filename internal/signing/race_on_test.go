//go:build race

package signing_test

// raceEnabled lets allocation tests step aside: under the race detector
// sync.Pool drops items on purpose, so allocation counts are meaningless.
const raceEnabled = true
