package consent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The helper protocol: newline-delimited JSON objects on the helper socket,
// one object per line, at most maxHelperLine bytes each.
//
//	helper  -> service  hello   {user, session, display, version}   first message, once
//	service -> helper   welcome {user, session, console}            the claim was checked
//	service -> helper   refused {error}                             and the service hangs up
//	service -> helper   ask     {id, request, deadline}             show a prompt
//	service -> helper   cancel  {id, error}                         the prompt is over (answered elsewhere, withdrawn, timed out)
//	service -> helper   live    {sessions}                          every live session, after each change
//	service -> helper   notice  {text}                              tell the user (the machine restarts now)
//	helper  -> service  answer  {id, approved, choice}              the user's answer to a prompt
//	helper  -> service  end     {id}                                the user pressed End session
//
// An ask whose request has kind "reboot" is a three-way question (Restart
// now / In 1 hour / Tonight); its answer carries the choice ("now", "1h"
// or "tonight") with approved true, or no choice (approved false: the
// dialog was closed, which means tonight). An ask whose request has desktop
// "control" is a three-way question too (Allow full control / View only /
// Deny): View only answers approved true with choice "view-only"; desktop
// "view-only" asks Allow view only / Deny, and its approval carries choice
// "view-only" as well.
//
// Everything the helper sends is untrusted: the service checks who the
// helper is from the socket (peer credentials), never from what it says.
const (
	helperHello   = "hello"
	helperWelcome = "welcome"
	helperRefused = "refused"
	helperAsk     = "ask"
	helperCancel  = "cancel"
	helperLive    = "live"
	helperNotice  = "notice"
	helperAnswer  = "answer"
	helperEnd     = "end"
)

// maxHelperLine bounds one protocol line either way.
const maxHelperLine = 16 << 10

// helperMsg is one protocol line; which fields are set depends on Type.
type helperMsg struct {
	Type string `json:"type"`

	// hello, welcome
	User    string `json:"user,omitempty"`
	Session string `json:"session,omitempty"` // a logind session ID, or "x11:DISPLAY"
	Display string `json:"display,omitempty"`
	Version string `json:"version,omitempty"`
	Console bool   `json:"console,omitempty"` // welcome: this session is the console's

	// ask, cancel, answer, end
	ID       string         `json:"id,omitempty"`
	Request  *helperRequest `json:"request,omitempty"`
	Deadline time.Time      `json:"deadline,omitzero"`
	Approved bool           `json:"approved,omitempty"`
	Choice   string         `json:"choice,omitempty"` // answer to a reboot ask: now, 1h or tonight; to a desktop ask: view-only

	// notice
	Text string `json:"text,omitempty"`

	// live
	Sessions []Live `json:"sessions,omitempty"`

	// refused, cancel
	Error string `json:"error,omitempty"`
}

// helperRequest is a request as the helper shows it: already cleaned by the
// service, with the capabilities in plain words.
type helperRequest struct {
	Kind         string   `json:"kind"`
	Technician   string   `json:"technician"`
	Reason       string   `json:"reason"`
	Hostname     string   `json:"hostname"`
	Capabilities []string `json:"capabilities,omitempty"`
	Fix          string   `json:"fix,omitempty"`
	Tonight      string   `json:"tonight,omitempty"` // reboot: the clock time of "tonight"
	Desktop      string   `json:"desktop,omitempty"` // session: what may be allowed of the screen, control or view-only
}

// toRequest turns what the helper received back into a Request for the
// prompt text, cleaning it again (the helper trusts its service, but the
// text came from a technician).
func (h *helperRequest) toRequest(id string, deadline time.Time) Request {
	r := Request{SessionID: cleanText(id, 64), Kind: cleanText(h.Kind, 16), Technician: cleanText(h.Technician, maxTechnician),
		Reason: cleanText(h.Reason, maxReason), Hostname: cleanText(h.Hostname, 255), Fix: cleanText(h.Fix, maxReason), Tonight: cleanText(h.Tonight, 8), Deadline: deadline}
	if d, err := ParseDesktop(h.Desktop); err == nil {
		r.desktop = d
	}
	for _, c := range h.Capabilities {
		r.Capabilities = append(r.Capabilities, cleanText(c, 32))
	}
	return r
}

// errHelperLine: a line over maxHelperLine.
var errHelperLine = fmt.Errorf("helper message longer than %d bytes", maxHelperLine)

// readHelperMsg reads and decodes one line. Unknown fields and trailing data
// are refused, and so is a message without a type.
func readHelperMsg(r *bufio.Reader) (helperMsg, error) {
	line, err := readLine(r)
	if err != nil {
		return helperMsg{}, err
	}
	return decodeHelperMsg(line)
}

// decodeHelperMsg decodes one protocol line (without its newline).
func decodeHelperMsg(line []byte) (helperMsg, error) {
	var m helperMsg
	if len(line) > maxHelperLine {
		return m, errHelperLine
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return helperMsg{}, fmt.Errorf("malformed helper message: %w", err)
	}
	if dec.More() {
		return helperMsg{}, errors.New("malformed helper message: data after the JSON object")
	}
	if err := m.validate(); err != nil {
		return helperMsg{}, err
	}
	return m, nil
}

// validate checks the fields a message of its type needs.
func (m *helperMsg) validate() error {
	switch m.Type {
	case helperHello:
		if m.User == "" || len(m.User) > 64 || m.Session == "" || len(m.Session) > 128 || len(m.Display) > 128 || len(m.Version) > 64 {
			return errors.New("hello: want user (1-64 bytes) and session (1-128 bytes)")
		}
	case helperAnswer, helperEnd, helperCancel:
		if m.ID == "" || len(m.ID) > 64 {
			return fmt.Errorf("%s: want an id of 1-64 bytes", m.Type)
		}
		if m.Choice != "" && !ValidChoice(m.Choice) && m.Choice != ChoiceViewOnly {
			return fmt.Errorf("%s: choice %q: want now, 1h, tonight or view-only", m.Type, cleanText(m.Choice, 16))
		}
	case helperNotice:
		if m.Text == "" || len(m.Text) > 2048 {
			return errors.New("notice: want a text of 1-2048 bytes")
		}
	case helperAsk:
		if m.ID == "" || len(m.ID) > 64 || m.Request == nil || m.Deadline.IsZero() {
			return errors.New("ask: want id, request and deadline")
		}
	case helperWelcome, helperRefused, helperLive:
	case "":
		return errors.New("helper message without a type")
	default:
		return fmt.Errorf("unknown helper message type %q", m.Type)
	}
	return nil
}

// readLine reads one line of at most maxHelperLine bytes, without its newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > maxHelperLine+1 {
			return nil, errHelperLine
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

// encodeHelperMsg writes m as one line.
func encodeHelperMsg(m helperMsg) []byte {
	b, err := json.Marshal(m)
	if err != nil { // only plain types: cannot happen
		panic(err)
	}
	return append(b, '\n')
}
