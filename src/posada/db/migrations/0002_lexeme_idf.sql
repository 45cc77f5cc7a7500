-- How rare each word is across all chunks: full-text ranking weighs a match on "masaje"
-- far above one on "cuesta". Rebuilt by every ingest that changes something.
CREATE TABLE lexeme_idf (
    lexeme text PRIMARY KEY,
    idf double precision NOT NULL
);
