-- Which model embedded each stored vector: posada refuses to compare a question's vector
-- with passages of another model (knowledge/reembed.py), and `posada reembed` knows which
-- rows it has already done when it is run again after an interruption.
--
-- Every vector stored before this migration came from all-MiniLM-L6-v2, the only local
-- model posada had. A database embedded through the OpenAI provider is labelled so too:
-- `posada reembed` embeds it again, or an UPDATE of the column naming the model that was
-- used puts the label right. New rows name their model (no default: never a silent label).
ALTER TABLE chunks ADD COLUMN embedding_model text NOT NULL DEFAULT 'all-MiniLM-L6-v2';
ALTER TABLE chunks ALTER COLUMN embedding_model DROP DEFAULT;
ALTER TABLE faq ADD COLUMN embedding_model text NOT NULL DEFAULT 'all-MiniLM-L6-v2';
ALTER TABLE faq ALTER COLUMN embedding_model DROP DEFAULT;
-- The start-up check and `posada reembed` look for rows of any other model.
CREATE INDEX chunks_embedding_model_idx ON chunks (embedding_model);
CREATE INDEX faq_embedding_model_idx ON faq (embedding_model);
