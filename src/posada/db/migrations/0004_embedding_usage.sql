-- The embedding usage ledger: one row per text embedded or served from a cache, so that
-- `posada audit embeddings` can report calls, tokens, cost, repeats and the cache hit rate.
CREATE TABLE embedding_usage (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,  -- NULL: shared or unattributed
    provider text NOT NULL,
    model text NOT NULL,
    call_id uuid NOT NULL,          -- the texts of one batch (one API call) share it
    text_hash bytea NOT NULL,       -- sha256 of the text: repeats without keeping the text
    tokens integer NOT NULL CHECK (tokens >= 0),
    cost_usd numeric(14, 10) NOT NULL DEFAULT 0,
    api boolean NOT NULL,
    cached boolean NOT NULL DEFAULT false
);
CREATE INDEX embedding_usage_created ON embedding_usage (created_at);
CREATE INDEX embedding_usage_tenant_created ON embedding_usage (tenant_id, created_at);
