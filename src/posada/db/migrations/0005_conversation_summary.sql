-- A conversation's running summary: written by the benchmark's baseline profile, which
-- compacts long conversations with an LLM call the way the naive system it imitates does.
ALTER TABLE conversations ADD COLUMN summary text;
