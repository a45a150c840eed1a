package manage

import (
	"errors"
	"fmt"
	"math"
)

// MinAdminKeyLength is the fewest characters an operator-chosen admin key may have.
const MinAdminKeyLength = 32

// minAdminKeyBits is the least entropy an operator-chosen admin key must show, estimated
// from how often each of its characters occurs. 32 random hex characters (128 bits)
// never show less than 86 by this estimate in a million draws; a word repeated, a run
// such as "abcd…" or "0000…", or a few characters over and over show far less or are
// refused by the other rules.
const minAdminKeyBits = 80

// CheckAdminKey says why an operator-chosen admin key (CONSIGN_ADMIN_KEY) is too easy to
// guess, or nil: it must have at least 32 characters, not be one piece repeated, not be
// mostly runs of neighbouring characters ("abcd", "0000", "9876"), and show at least 80
// bits of entropy by the frequency of its characters. The admin key opens every org, and
// one chosen by a person is the likeliest to be guessed.
func CheckAdminKey(key string) error {
	const advice = `: use at least 32 random characters, such as the output of "openssl rand -hex 32"`
	runes := []rune(key)
	n := len(runes)
	if n < MinAdminKeyLength {
		return fmt.Errorf("has %d characters%s", n, advice)
	}
	if p := period(runes); p > 0 {
		return fmt.Errorf("repeats a piece of %d characters%s", p, advice)
	}
	// A run is three or more characters each stepping from the one before by the same -1,
	// 0 or +1 ("abc", "0000", "9876"). Random keys, whose neighbours differ by at most one
	// about a fifth of the time, almost never hold one; a key mostly made of them is refused.
	inRun := make([]bool, n)
	for i := 2; i < n; i++ {
		if d := runes[i] - runes[i-1]; d >= -1 && d <= 1 && d == runes[i-1]-runes[i-2] {
			inRun[i-2], inRun[i-1], inRun[i] = true, true, true
		}
	}
	runs := 0
	for _, r := range inRun {
		if r {
			runs++
		}
	}
	if runs*2 > n {
		return errors.New("is mostly runs such as abcd or 0000" + advice)
	}
	if bits := entropyBits(runes); bits < minAdminKeyBits {
		return fmt.Errorf("shows about %.0f bits of entropy, at least %d are needed%s", bits, minAdminKeyBits, advice)
	}
	return nil
}

// period returns the shortest p ≤ len/2 such that s is a piece of p characters repeated
// (the last copy possibly cut short), or 0.
func period(s []rune) int {
	for p := 1; p <= len(s)/2; p++ {
		repeats := true
		for i := p; i < len(s); i++ {
			if s[i] != s[i-p] {
				repeats = false
				break
			}
		}
		if repeats {
			return p
		}
	}
	return 0
}

// entropyBits estimates a string's entropy from how often each character occurs in it
// (Shannon), times its length.
func entropyBits(s []rune) float64 {
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(len(s))
		h -= p * math.Log2(p)
	}
	return h * float64(len(s))
}
