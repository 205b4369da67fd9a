package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: what every authenticator app understands (RFC 6238's
// defaults). A code is accepted one period early or late (clock skew), and
// each time step at most once per user (Validate's replay protection).
const (
	TOTPPeriod = 30
	TOTPSkew   = 1
	TOTPDigits = otp.DigitsSix
)

// Errors of ValidateTOTP.
var (
	ErrCodeWrong  = errors.New("wrong code")
	ErrCodeReused = errors.New("code already used")
)

// Enrolment is a new TOTP secret and the otpauth:// URI that authenticator
// apps read (as text or a QR code).
type Enrolment struct {
	Secret string // base32, no padding
	URI    string
}

// NewTOTP makes a TOTP secret (160 bits, RFC 4226's recommendation) for
// account at issuer.
func NewTOTP(issuer, account string) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: TOTPPeriod,
		SecretSize: 20, Digits: TOTPDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, fmt.Errorf("new totp secret: %w", err)
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL()}, nil
}

// Step is the TOTP time step of t.
func Step(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// ValidateTOTP checks code against secret at now, one step early or late
// allowed, and refuses a code of a time step at or before lastStep (the
// last one this user had accepted): each code works once, and an older
// one never after a newer. It returns the step the code was for, which the
// caller stores as the new lastStep (atomically, only if still greater:
// store.AcceptTOTPStep) before it lets the person in.
func ValidateTOTP(secret, code string, lastStep int64, now time.Time) (int64, error) {
	code = strings.TrimSpace(code)
	if len(code) != int(TOTPDigits) {
		return 0, ErrCodeWrong
	}
	reused := false
	cur := Step(now)
	// Each candidate step is checked on its own (Skew 0 at that step's time),
	// so the matching step is known.
	for _, step := range []int64{cur, cur - 1, cur + 1} {
		ok, err := totp.ValidateCustom(code, secret, time.Unix(step*TOTPPeriod, 0).UTC(), totp.ValidateOpts{
			Period: TOTPPeriod, Skew: 0, Digits: TOTPDigits, Algorithm: otp.AlgorithmSHA1})
		if err != nil || !ok {
			continue
		}
		if step <= lastStep {
			reused = true
			continue
		}
		return step, nil
	}
	if reused {
		return 0, ErrCodeReused
	}
	return 0, ErrCodeWrong
}

// RecoveryCodes is how many recovery codes a user gets at enrolment.
const RecoveryCodes = 10

// NewRecoveryCodes returns RecoveryCodes codes to show the person once, and
// their hashes to store. A code is 80 random bits as 16 base32 characters in
// groups of four ("abcd-efgh-ijkl-mnop"): random enough that a fast hash
// (SHA-256, like API tokens) is safe to store, and each works once.
func NewRecoveryCodes() (codes, hashes []string) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for range RecoveryCodes {
		var b [10]byte
		rand.Read(b[:])
		s := strings.ToLower(enc.EncodeToString(b[:]))
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		codes = append(codes, code)
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return codes, hashes
}

// IsRecoveryCode reports whether s has the shape of a recovery code (not of
// a TOTP code), so a login can tell which was typed.
func IsRecoveryCode(s string) bool {
	return len(normRecovery(s)) == 16
}

// HashRecoveryCode is how a recovery code is stored and looked up: hex
// SHA-256 of its 16 characters, ignoring case, spaces and dashes.
func HashRecoveryCode(code string) string {
	sum := sha256.Sum256([]byte(normRecovery(code)))
	return hex.EncodeToString(sum[:])
}

func normRecovery(s string) string {
	s = strings.ToLower(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s)
}
