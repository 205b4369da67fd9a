-- The agent's client certificate (standard base64 of its DER), as issued at
-- enrollment, or as first presented with a signed consent receipt by an
-- agent enrolled before this column existed. Consent receipts the agent
-- signs are checked against it; '' when not known yet.

-- +goose Up
ALTER TABLE agents ADD COLUMN cert TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE agents DROP COLUMN cert;
