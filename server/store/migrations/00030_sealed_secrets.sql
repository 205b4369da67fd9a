-- Secrets kept in columns are encrypted at rest (server/store/sealed.go):
-- alert routes' webhook HMAC keys and SMTP passwords, users' TOTP secrets
-- and those being enrolled. A stored secret is '' (none), 'plain:' || the
-- secret (not sealed yet), or 'v1:KEYID:...' (AES-256-GCM under the
-- relay's secrets key: DATA/secrets.key on SQLite, the tier key on
-- PostgreSQL). SQL has no key, so this migration only marks the plain
-- values it finds; the relay seals them at its next start
-- (store.UseSealer), before it serves. Down turns the values still plain
-- back into bare secrets; sealed ones stay sealed (a relay before 00030
-- cannot read them: set those secrets again after a downgrade).

-- +goose Up
UPDATE alert_routes SET secret = 'plain:' || secret WHERE secret <> '';
UPDATE users SET totp_secret = 'plain:' || totp_secret WHERE totp_secret <> '';
UPDATE users SET totp_pending = 'plain:' || totp_pending WHERE totp_pending <> '';

-- +goose Down
UPDATE users SET totp_pending = substr(totp_pending, 7) WHERE totp_pending LIKE 'plain:%';
UPDATE users SET totp_secret = substr(totp_secret, 7) WHERE totp_secret LIKE 'plain:%';
UPDATE alert_routes SET secret = substr(secret, 7) WHERE secret LIKE 'plain:%';
