-- Abuse limits (issue 12). Buckets of the login throttle when no Redis is configured (or
-- while it is down): one row per key, updated by one atomic upsert per attempt, so every
-- process and replica counts the same attempts. `granted` and `retry_after_s` are the
-- last statement's decision, read back through RETURNING.
CREATE TABLE throttle_buckets (
    key text PRIMARY KEY,
    level double precision NOT NULL,
    updated_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    granted boolean NOT NULL DEFAULT true,
    retry_after_s double precision NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL
);
CREATE INDEX throttle_buckets_expiry ON throttle_buckets (expires_at);

-- Tokens issued before this instant are refused everywhere (logout, `posada reservations
-- revoke`); NULL: none revoked.
ALTER TABLE reservations ADD COLUMN tokens_valid_after timestamptz;
