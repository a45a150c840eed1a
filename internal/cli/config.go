package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// configFile loads `serve --config FILE`: a JSON object whose keys are the command's flag
// names in snake_case (or as written, with dashes). Its values apply only to flags set
// neither on the command line nor by their environment variable, so the precedence is
// flags > environment > file > defaults. A key that names no flag is an error, so a typo
// does not silently leave a default in place.
func configFile(r io.Reader) (kong.Resolver, error) {
	var values map[string]json.RawMessage
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&values); err != nil {
		return nil, fmt.Errorf("config file: %w (want a JSON object of settings)", err)
	}
	checked := false
	return kong.ResolverFunc(func(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
		if !checked {
			checked = true
			if err := checkKeys(values, ctx.Flags()); err != nil {
				return nil, err
			}
		}
		for _, env := range flag.Envs {
			if _, ok := os.LookupEnv(env); ok {
				return nil, nil // the environment wins over the file
			}
		}
		raw, ok := values[strings.ReplaceAll(flag.Name, "-", "_")]
		if !ok {
			raw, ok = values[flag.Name]
		}
		if !ok || flag.Name == "config" {
			return nil, nil
		}
		var v any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if n, isNum := v.(json.Number); isNum {
			return n.String(), nil
		}
		return v, nil
	}), nil
}

func checkKeys(values map[string]json.RawMessage, flags []*kong.Flag) error {
	var known []string
	for _, f := range flags {
		if f.Name != "help" && f.Name != "config" {
			known = append(known, strings.ReplaceAll(f.Name, "-", "_"))
		}
	}
	for key := range values {
		if !slices.Contains(known, strings.ReplaceAll(key, "-", "_")) {
			slices.Sort(known)
			return fmt.Errorf("config file: unknown setting %q; known: %s", key, strings.Join(known, ", "))
		}
	}
	return nil
}
