package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"
)

// Proto is the link protocol version spoken by this build. A peer announcing
// another version is refused with a message that names both.
const Proto = 1

// Control message types. A peer that sends a type its side does not expect
// loses its connection.
const (
	MsgHello     = "hello"     // agent -> relay, first message: Hello
	MsgWelcome   = "welcome"   // relay -> agent, answer to hello: Welcome
	MsgInventory = "inventory" // agent -> relay, inventory changed: Inventory
)

// Envelope is the JSON payload of a Control frame.
type Envelope struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"` // correlates a reply with its request
	Body json.RawMessage `json:"body,omitempty"`

	// made is Body as NewEnvelope made it: compact JSON as json.Marshal
	// writes it, which AppendControl copies without checking it again
	// while Body is still that slice. frame, when NewEnvelope encoded a run
	// message, is the whole Control frame, written once with Body in its
	// middle; AppendControl returns it while Type and ID are still those
	// it was written with.
	made               json.RawMessage
	frame              []byte
	frameType, frameID string
}

// NewEnvelope marshals body into an envelope of type typ. The run messages
// have their own encoders (runjson.go), which write what json.Marshal
// writes, straight into the frame that AppendControl then returns.
func NewEnvelope(typ, id string, body any) (Envelope, error) {
	if size, ok := bodySize(body); ok {
		b := make([]byte, 0, HeaderLen+len(`{"type":,"id":,"body":}`)+2*len(typ)+2*len(id)+size)
		b = AppendHeader(b, TypeControl, ControlStream)
		b = Envelope{Type: typ, ID: id}.appendJSON(b)
		b = append(b[:len(b)-1], `,"body":`...)
		start := len(b)
		if b, ok = appendBody(b, body); ok {
			b = append(b, '}')
			raw := json.RawMessage(b[start : len(b)-1 : len(b)-1])
			return Envelope{Type: typ, ID: id, Body: raw, made: raw, frame: b[:len(b):len(b)], frameType: typ, frameID: id}, nil
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	return Envelope{Type: typ, ID: id, Body: raw, made: raw}, nil
}

// bodyAsMade reports whether env.Body is still the slice NewEnvelope made.
func (env *Envelope) bodyAsMade() bool {
	return len(env.made) > 0 && len(env.Body) == len(env.made) && &env.Body[0] == &env.made[0]
}

// AppendControl appends a whole Control frame carrying env to b.
func AppendControl(b []byte, env Envelope) ([]byte, error) {
	n := len(b)
	asMade := env.bodyAsMade()
	if asMade && env.frame != nil && env.Type == env.frameType && env.ID == env.frameID {
		if size := len(env.frame) - HeaderLen; size > MaxControl {
			return nil, fmt.Errorf("encode control: %s message of %d bytes exceeds %d", env.Type, size, MaxControl)
		}
		if b == nil {
			return env.frame, nil // capacity == length: an append to it copies
		}
		return append(b, env.frame...), nil
	}
	if asMade {
		b = slices.Grow(b, HeaderLen+len(env.Type)+len(env.ID)+len(env.Body)+32)
		b = env.appendJSON(AppendHeader(b, TypeControl, ControlStream))
	} else {
		raw, err := json.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("encode control: %w", err)
		}
		b = append(AppendHeader(b, TypeControl, ControlStream), raw...)
	}
	if size := len(b) - n - HeaderLen; size > MaxControl {
		return nil, fmt.Errorf("encode control: %s message of %d bytes exceeds %d", env.Type, size, MaxControl)
	}
	return b, nil
}

// DecodeEnvelope decodes a Control payload. Unknown fields are refused so that
// a peer cannot smuggle data past a validator that never sees it.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	env, ok := decodeEnvelope(payload)
	if !ok {
		env = Envelope{}
		if err := strictUnmarshal(payload, &env); err != nil {
			return Envelope{}, malformed("control message: %v", err)
		}
	}
	if env.Type == "" || len(env.Type) > 64 {
		return Envelope{}, malformed("control message without a type")
	}
	if len(env.ID) > 128 {
		return Envelope{}, malformed("control message id longer than 128 bytes")
	}
	return env, nil
}

// DecodeBody decodes env.Body into v (strictly) and runs v's Validate method
// when it has one.
func DecodeBody(env Envelope, v any) error {
	if len(env.Body) == 0 {
		return malformed("%s message without a body", env.Type)
	}
	if !decodeBody(env.Body, v) {
		if err := strictUnmarshal(env.Body, v); err != nil {
			return malformed("%s message: %v", env.Type, err)
		}
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return malformed("%s message: %v", env.Type, err)
		}
	}
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// Hello is the agent's first message on every connection.
type Hello struct {
	Proto     int       `json:"proto"`
	Inventory Inventory `json:"inventory"`
}

// Validate checks the protocol version and the inventory.
func (h *Hello) Validate() error {
	if h.Proto != Proto {
		return fmt.Errorf("agent speaks link protocol %d, this relay speaks %d: upgrade the older side", h.Proto, Proto)
	}
	return h.Inventory.Validate()
}

// Welcome is the relay's answer to Hello.
type Welcome struct {
	Proto      int       `json:"proto"`
	AgentID    string    `json:"agent_id"`
	Heartbeat  Duration  `json:"heartbeat"` // the agent pings this often; the relay drops it after 3 missed
	ServerTime time.Time `json:"server_time"`
	// ReconnectWindow is how long the agent spreads its first reconnect over
	// (uniformly) when this link is lost after it was up a while. The relay
	// sizes it to its fleet, so that a restart is not met by every agent at once.
	ReconnectWindow Duration `json:"reconnect_window,omitempty"`
}

// Validate checks the fields an agent relies on.
func (w *Welcome) Validate() error {
	if w.Proto != Proto {
		return fmt.Errorf("relay speaks link protocol %d, this agent speaks %d: upgrade the older side", w.Proto, Proto)
	}
	if time.Duration(w.Heartbeat) < time.Second || time.Duration(w.Heartbeat) > 10*time.Minute {
		return fmt.Errorf("heartbeat %v outside 1s..10m", time.Duration(w.Heartbeat))
	}
	if w.ReconnectWindow < 0 || time.Duration(w.ReconnectWindow) > 10*time.Minute {
		return fmt.Errorf("reconnect window %v outside 0..10m", time.Duration(w.ReconnectWindow))
	}
	return nil
}

// Duration is a time.Duration that travels as a Go duration string ("25s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"25s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Inventory is what an agent reports about its machine.
type Inventory struct {
	Hostname  string            `json:"hostname"`
	OS        string            `json:"os"`
	Arch      string            `json:"arch"`
	OSVersion string            `json:"os_version,omitempty"`
	Version   string            `json:"version"` // agent version
	Users     []string          `json:"users,omitempty"`
	IPs       []string          `json:"ips,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"` // the agent's own tags; scoped tags from enrollment win on the relay
	// Hardware and BootTime (issue 17): nil and zero from agents that do
	// not collect them. See inventory.go.
	Hardware *Hardware `json:"hardware,omitempty"`
	BootTime time.Time `json:"boot_time,omitzero"`
}

// Inventory limits.
const (
	MaxTags     = 64
	MaxListLen  = 256
	MaxFieldLen = 256
)

var (
	tagKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	tagValRE = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{0,128}$`)
	tokenRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
)

// ValidTag reports whether k=v may be a tag. Tag values are restricted to
// characters that selectors can name without quoting.
func ValidTag(k, v string) error {
	if !tagKeyRE.MatchString(k) {
		return fmt.Errorf("tag key %q: want 1-63 of [A-Za-z0-9_.-], starting with a letter or digit", k)
	}
	if !tagValRE.MatchString(v) {
		return fmt.Errorf("tag %s value %q: want at most 128 of [A-Za-z0-9_.:/-]", k, v)
	}
	return nil
}

// ValidTags checks a whole tag set: at most MaxTags, each a ValidTag.
func ValidTags(tags map[string]string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%d tags, at most %d allowed", len(tags), MaxTags)
	}
	for k, v := range tags {
		if err := ValidTag(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Validate bounds every field so a hostile agent cannot bloat the relay's
// store or logs.
func (inv *Inventory) Validate() error {
	if inv.Hostname == "" || len(inv.Hostname) > 253 || !printable(inv.Hostname) {
		return fmt.Errorf("hostname must be 1-253 printable characters")
	}
	if !tokenRE.MatchString(inv.OS) || !tokenRE.MatchString(inv.Arch) {
		return fmt.Errorf("os and arch must be 1-32 of [A-Za-z0-9_.-]")
	}
	for name, s := range map[string]string{"os_version": inv.OSVersion, "version": inv.Version} {
		if len(s) > MaxFieldLen || !printable(s) {
			return fmt.Errorf("%s must be at most %d printable characters", name, MaxFieldLen)
		}
	}
	if len(inv.Users) > MaxListLen || len(inv.IPs) > MaxListLen {
		return fmt.Errorf("at most %d users and %d addresses", MaxListLen, MaxListLen)
	}
	for _, u := range inv.Users {
		if u == "" || len(u) > 64 || !printable(u) {
			return fmt.Errorf("user name %q must be 1-64 printable characters", u)
		}
	}
	for _, ip := range inv.IPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("ip %q: %v", ip, err)
		}
	}
	if inv.Hardware != nil {
		if err := inv.Hardware.Validate(); err != nil {
			return err
		}
	}
	return ValidTags(inv.Tags)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
