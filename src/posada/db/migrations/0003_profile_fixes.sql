-- Found by `posada db profile` (docs/profiling.md). Retrieval weighs a searched word that
-- no chunk contains as the rarest known word, `(SELECT max(idf) FROM lexeme_idf)`. Without
-- an index that reads the whole table, every word of every document, whenever a question
-- has such a word; with it, one index entry.
CREATE INDEX lexeme_idf_idf_idx ON lexeme_idf (idf);
