-- posada's first schema: tenants, units, reservations, knowledge, FAQ, conversations.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Guests write Spanish and English, with and without accents. Each configuration folds
-- accents, drops the stop words of BOTH languages (so "el"/"the" match nothing) and
-- stems in its own language.
CREATE TEXT SEARCH DICTIONARY posada_stop_es (TEMPLATE = simple, STOPWORDS = spanish, ACCEPT = false);
CREATE TEXT SEARCH DICTIONARY posada_stop_en (TEMPLATE = simple, STOPWORDS = english, ACCEPT = false);
CREATE TEXT SEARCH CONFIGURATION posada_es (COPY = spanish);
ALTER TEXT SEARCH CONFIGURATION posada_es
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, posada_stop_en, spanish_stem;
CREATE TEXT SEARCH CONFIGURATION posada_en (COPY = english);
ALTER TEXT SEARCH CONFIGURATION posada_en
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH unaccent, posada_stop_es, english_stem;

CREATE TABLE tenants (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}',
    knowledge_version integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE units (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    slug text NOT NULL,
    name text NOT NULL,
    unit_type text,
    capacity integer,
    details jsonb NOT NULL DEFAULT '{}',
    UNIQUE (tenant_id, slug)
);

CREATE TABLE reservations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    external_ref text NOT NULL,
    unit_id bigint NOT NULL REFERENCES units ON DELETE RESTRICT,
    guest_name text NOT NULL,
    phone_last4 text NOT NULL CHECK (phone_last4 ~ '^[0-9]{4}$'),
    check_in date NOT NULL,
    check_out date NOT NULL,
    status text NOT NULL CHECK (status IN ('confirmed', 'checked_in', 'checked_out', 'cancelled')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_ref),
    CHECK (check_out > check_in)
);
-- Guest login looks up exactly this.
CREATE INDEX reservations_login_idx ON reservations (tenant_id, check_in, phone_last4);
-- Staff lists, keyset-paginated by (check_in, id).
CREATE INDEX reservations_list_idx ON reservations (tenant_id, check_in, id);

CREATE TABLE documents (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,   -- NULL: shared tourism content
    scope text NOT NULL CHECK (scope IN ('hotel', 'unit', 'tourism')),
    unit_id bigint REFERENCES units ON DELETE CASCADE,
    source text NOT NULL,            -- path relative to the ingested folder
    title text NOT NULL,
    language text,
    content_hash text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((scope = 'tourism') = (tenant_id IS NULL)),
    CHECK ((scope = 'unit') = (unit_id IS NOT NULL))
);
CREATE UNIQUE INDEX documents_source_idx ON documents (tenant_id, source) NULLS NOT DISTINCT;

CREATE TABLE chunks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
    -- Copied from the document so that retrieval filters without a join.
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('hotel', 'unit', 'tourism')),
    unit_id bigint REFERENCES units ON DELETE CASCADE,
    ordinal integer NOT NULL,
    heading text NOT NULL,
    content text NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('posada_es', heading), 'A')
        || setweight(to_tsvector('posada_en', heading), 'A')
        || setweight(to_tsvector('posada_es', content), 'B')
        || setweight(to_tsvector('posada_en', content), 'B')
    ) STORED,
    embedding vector({embedding_dim}) NOT NULL
);
CREATE INDEX chunks_document_idx ON chunks (document_id);
CREATE INDEX chunks_visibility_idx ON chunks (tenant_id, scope, unit_id);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding_idx ON chunks USING hnsw (embedding vector_cosine_ops);

CREATE TABLE faq (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES documents ON DELETE CASCADE,
    chunk_id bigint REFERENCES chunks ON DELETE CASCADE,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('hotel', 'unit', 'tourism')),
    unit_id bigint REFERENCES units ON DELETE CASCADE,
    question text NOT NULL,
    answer text NOT NULL,
    question_tsv tsvector GENERATED ALWAYS AS (
        to_tsvector('posada_es', question) || to_tsvector('posada_en', question)
    ) STORED,
    embedding vector({embedding_dim}) NOT NULL
);
CREATE INDEX faq_document_idx ON faq (document_id);
CREATE INDEX faq_visibility_idx ON faq (tenant_id, scope, unit_id);
CREATE INDEX faq_embedding_idx ON faq USING hnsw (embedding vector_cosine_ops);

CREATE TABLE conversations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    reservation_id bigint NOT NULL REFERENCES reservations ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_guest_idx ON conversations (tenant_id, reservation_id, updated_at DESC);

CREATE TABLE messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES conversations ON DELETE CASCADE,
    tenant_id bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('guest', 'assistant')),
    content text NOT NULL,
    layer text,                 -- which stage answered: exact, semantic, faq, llm, extractive
    model text,
    input_tokens integer,
    output_tokens integer,
    cost_usd numeric(12, 6),
    sources jsonb,
    timings jsonb,
    incomplete boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Conversation history, keyset-paginated by id.
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
