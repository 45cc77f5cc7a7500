-- The semantic answer cache: answers worth reusing, looked up by the question's embedding
-- in the same round trip as the FAQ and retrieval. An entry belongs to one tenant, to one
-- unit when its answer drew on that unit's private documents (else to any guest of the
-- tenant), and to one knowledge version: an ingest makes the older ones unreachable (and
-- deletes them in its transaction).
CREATE TABLE answer_cache (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    unit_id bigint REFERENCES units ON DELETE CASCADE,
    knowledge_version integer NOT NULL,
    language text NOT NULL,
    question text NOT NULL,
    normalized text NOT NULL,
    embedding vector({embedding_dim}) NOT NULL,
    answer text NOT NULL,
    layer text NOT NULL CHECK (layer IN ('llm', 'extractive')),
    model text,
    sources jsonb NOT NULL DEFAULT '[]',
    evidence bigint,                -- the best passage (chunk id) when it was answered
    hits integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_hit_at timestamptz
);
CREATE UNIQUE INDEX answer_cache_key
    ON answer_cache (tenant_id, coalesce(unit_id, 0), knowledge_version, normalized);
CREATE INDEX answer_cache_lookup ON answer_cache (tenant_id, knowledge_version, language);
