-- Figures that outlive the process (issue 16): each process adds its requests to per-minute
-- rows, batched off the request path; old minutes are rolled into hours, then days. A row
-- is one (grain, bucket, replica, tenant, key): every worker of one replica adds into the
-- same row (an upsert that sums), and replicas stay apart so that any set of them can be
-- read. Latency is a histogram over posada.observe.histogram's fixed bounds, so that
-- minutes, hours and replicas merge by adding counts and percentiles come from the sum.
-- tenant_id NULL: a request of no hotel (health, metrics, unmatched paths).

-- Sum two histograms element by element (the longer one's tail is kept).
CREATE FUNCTION posada_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i), '{}')
    FROM unnest(a, b) WITH ORDINALITY AS u(x, y, i)
$$;

CREATE TABLE metric_requests (
    grain char(1) NOT NULL CHECK (grain IN ('m', 'h', 'd')),  -- minute, hour, day
    bucket timestamptz NOT NULL,    -- the start of its minute, hour or day (UTC)
    replica text NOT NULL,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    route text NOT NULL,            -- `METHOD /template`, as the request window names it
    requests bigint NOT NULL DEFAULT 0,
    errors bigint NOT NULL DEFAULT 0,       -- status >= 500
    slow bigint NOT NULL DEFAULT 0,
    latency_ms_sum double precision NOT NULL DEFAULT 0,
    latency bigint[] NOT NULL DEFAULT '{}', -- counts per histogram bucket
    UNIQUE NULLS NOT DISTINCT (grain, bucket, replica, tenant_id, route)
);

-- Lookups in each answer layer (exact, semantic, faq, public): hits and misses.
CREATE TABLE metric_layers (
    grain char(1) NOT NULL CHECK (grain IN ('m', 'h', 'd')),
    bucket timestamptz NOT NULL,
    replica text NOT NULL,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    layer text NOT NULL,
    hits bigint NOT NULL DEFAULT 0,
    misses bigint NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, replica, tenant_id, layer)
);

-- Answers given, by the layer that gave them (faq, exact, semantic, extractive, llm...).
CREATE TABLE metric_answers (
    grain char(1) NOT NULL CHECK (grain IN ('m', 'h', 'd')),
    bucket timestamptz NOT NULL,
    replica text NOT NULL,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    layer text NOT NULL,
    answers bigint NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, replica, tenant_id, layer)
);

-- LLM use by model: calls, tokens and cost.
CREATE TABLE metric_llm (
    grain char(1) NOT NULL CHECK (grain IN ('m', 'h', 'd')),
    bucket timestamptz NOT NULL,
    replica text NOT NULL,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    model text NOT NULL,
    calls bigint NOT NULL DEFAULT 0,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, replica, tenant_id, model)
);

-- Embeddings by provider: texts computed and served from a cache, API calls and cost.
CREATE TABLE metric_embeddings (
    grain char(1) NOT NULL CHECK (grain IN ('m', 'h', 'd')),
    bucket timestamptz NOT NULL,
    replica text NOT NULL,
    tenant_id bigint REFERENCES tenants ON DELETE CASCADE,
    provider text NOT NULL,
    computed bigint NOT NULL DEFAULT 0,
    cached bigint NOT NULL DEFAULT 0,
    api_calls bigint NOT NULL DEFAULT 0,
    cost_usd double precision NOT NULL DEFAULT 0,
    UNIQUE NULLS NOT DISTINCT (grain, bucket, replica, tenant_id, provider)
);

-- Reads go by hotel and time (a hotel's month, the staff page's last hour); roll-ups and
-- retention go by grain and time (the unique index leads with both).
CREATE INDEX metric_requests_tenant_idx ON metric_requests (tenant_id, grain, bucket);
CREATE INDEX metric_layers_tenant_idx ON metric_layers (tenant_id, grain, bucket);
CREATE INDEX metric_answers_tenant_idx ON metric_answers (tenant_id, grain, bucket);
CREATE INDEX metric_llm_tenant_idx ON metric_llm (tenant_id, grain, bucket);
CREATE INDEX metric_embeddings_tenant_idx ON metric_embeddings (tenant_id, grain, bucket);
