-- How rare each word is across all chunks: full-text ranking weighs a match on "masaje"
-- far above one on "cuesta". Rebuilt by every ingest that changes something.
CREATE TABLE lexeme_idf (
    lexeme text PRIMARY KEY,
    idf double precision NOT NULL
);

-- Retrieval finds shared tourism rows by `tenant_id IS NULL` (indexable); hold chunks and
-- FAQ entries to the same rule their documents follow.
ALTER TABLE chunks ADD CONSTRAINT chunks_tourism_has_no_tenant
    CHECK ((scope = 'tourism') = (tenant_id IS NULL));
ALTER TABLE faq ADD CONSTRAINT faq_tourism_has_no_tenant
    CHECK ((scope = 'tourism') = (tenant_id IS NULL));
