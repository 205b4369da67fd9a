package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// parseArgs decodes the `args` parameter: one JSON object whose values are
// all strings, like {"interface":"eth0","force":"true"}. Anything else (an
// array, a number, null, a nested object, a key given twice, trailing data)
// is refused: the agent encodes every value as a string, and the script's
// header manifest is what says what a value means.
func parseArgs(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return map[string]string{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("args: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("args: want a JSON object of strings, like {\"name\":\"value\"}, not %s", describe(tok))
	}
	out := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("args: %v", err)
		}
		key, _ := tok.(string) // object keys are always strings
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("args: %q given twice", key)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("args: %v", err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("args: the value of %q is %s: every value must be a JSON string (write \"3\", \"true\")", key, describe(tok))
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("args: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("args: data after the JSON object")
	}
	return out, nil
}

// describe names a JSON token's kind for an error message.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// envName is the environment variable a script parameter arrives in.
func envName(param string) string { return "PATCHBAY_PARAM_" + strings.ToUpper(param) }

// paramEnv turns validated script parameters into sorted KEY=VALUE strings.
func paramEnv(params map[string]string) []string {
	env := make([]string, 0, len(params))
	for k, v := range params {
		env = append(env, envName(k)+"="+v)
	}
	sort.Strings(env)
	return env
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	n := len(p)
	room := h.max - h.buf.Len()
	if len(p) > room {
		h.truncated = true
		p = p[:max(room, 0)]
	}
	h.buf.Write(p)
	return n, nil
}

func (h *headBuffer) String() string {
	if h.truncated {
		return h.buf.String() + "\n…[output truncated]"
	}
	return h.buf.String()
}
