-- The front desk's reservation list at a hotel group's size (issue 15), as
-- `posada db profile --reservations 100000` showed it:
-- - a guest's name matched inside the folded name (LIKE '%nunez%') read every stay of the
--   hotel when few matched: a trigram index finds the few;
-- - "stays with a night on or after D" walked every stay that began before D: the longest
--   stay bounds how far back a matching check-in can be, and this index gives it at once.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX reservations_guest_trgm_idx ON reservations USING gin (guest_folded gin_trgm_ops);
CREATE INDEX reservations_nights_idx ON reservations (tenant_id, (check_out - check_in));
