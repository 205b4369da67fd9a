package account

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// cheap keeps the tests fast; DefaultParams are measured by BenchmarkHash.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	h, err := HashWith("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q: want a PHC argon2id string with its parameters", h)
	}
	ok, rehash, err := Verify(h, "correct horse battery")
	if err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if !rehash {
		t.Error("a hash with other parameters than DefaultParams should ask for a rehash")
	}
	if ok, _, _ := Verify(h, "correct horse batterz"); ok {
		t.Error("wrong password verified")
	}
	h2, _ := HashWith("correct horse battery", cheap)
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	d, err := Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := Verify(d, "correct horse battery"); !ok || rehash || err != nil {
		t.Errorf("default hash: ok=%v rehash=%v err=%v, want ok and no rehash", ok, rehash, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, s := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5"} {
		if ok, _, err := Verify(s, "x"); ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", s, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	if err := CheckPassword("short"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short password: %v", err)
	}
	if err := CheckPassword(strings.Repeat("x", MaxPasswordLen+1)); err == nil {
		t.Error("an over-long password was accepted")
	}
	if err := CheckPassword(NewPassword()); err != nil {
		t.Errorf("a generated password: %v", err)
	}
}

func TestTOTPReplay(t *testing.T) {
	e, err := NewTOTP("Patchbay relay.example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/") || !strings.Contains(e.URI, "secret="+e.Secret) {
		t.Fatalf("uri %q", e.URI)
	}
	now := time.Date(2026, 12, 6, 10, 0, 15, 0, time.UTC)
	code, _ := totp.GenerateCode(e.Secret, now)
	step, err := ValidateTOTP(e.Secret, code, 0, now)
	if err != nil || step != Step(now) {
		t.Fatalf("fresh code: step %d err %v, want %d", step, err, Step(now))
	}
	// The same code again, in the same or the next period: refused.
	for _, at := range []time.Time{now, now.Add(30 * time.Second)} {
		if _, err := ValidateTOTP(e.Secret, code, step, at); !errors.Is(err, ErrCodeReused) {
			t.Errorf("reused code at %v: %v, want ErrCodeReused", at, err)
		}
	}
	// The previous period's code after this one: refused too.
	prev, _ := totp.GenerateCode(e.Secret, now.Add(-30*time.Second))
	if _, err := ValidateTOTP(e.Secret, prev, step, now); !errors.Is(err, ErrCodeReused) {
		t.Errorf("older code after a newer: %v", err)
	}
	// The next period's code is fine (one step of skew).
	next, _ := totp.GenerateCode(e.Secret, now.Add(30*time.Second))
	if s, err := ValidateTOTP(e.Secret, next, step, now); err != nil || s != step+1 {
		t.Errorf("next code: %d %v", s, err)
	}
	// Two periods off, or wrong: refused.
	far, _ := totp.GenerateCode(e.Secret, now.Add(-90*time.Second))
	for _, c := range []string{far, "000000", "12345", "abcdef", ""} {
		if c == code {
			continue
		}
		if _, err := ValidateTOTP(e.Secret, c, 0, now); !errors.Is(err, ErrCodeWrong) {
			t.Errorf("code %q: %v, want ErrCodeWrong", c, err)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := NewRecoveryCodes()
	if len(codes) != RecoveryCodes || len(hashes) != RecoveryCodes {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 19 || c[4] != '-' || !IsRecoveryCode(c) || seen[c] {
			t.Errorf("code %q: want 4 groups of 4, unique", c)
		}
		seen[c] = true
		if HashRecoveryCode(c) != hashes[i] || HashRecoveryCode(strings.ToUpper(strings.ReplaceAll(c, "-", " "))) != hashes[i] {
			t.Errorf("hash of %q does not match (case, dashes and spaces must not matter)", c)
		}
		if strings.Contains(hashes[i], c) {
			t.Error("the stored hash contains the code")
		}
	}
	if IsRecoveryCode("123456") {
		t.Error("a TOTP code taken for a recovery code")
	}
}

// BenchmarkHash measures one hash with DefaultParams: the cost of a login.
// The figure goes into DefaultParams' comment and the README.
func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
