-- The staff's reservation list (issue 15). Guest names are searched without case or
-- accents: "jose" finds "José". `translate` keeps the function immutable (unaccent() is
-- not, and is an extension a managed server may lack), so the folded name can be a
-- stored column; it covers the accents of Spanish, Portuguese and French names.
CREATE FUNCTION posada_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(translate($1,
        'ÁÀÂÄÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÑÇÝáàâäãåéèêëíìîïóòôöõúùûüñçýÿ',
        'AAAAAAEEEEIIIIOOOOOUUUUNCYaaaaaaeeeeiiiiooooouuuuncyy'));

ALTER TABLE reservations
    ADD COLUMN guest_folded text GENERATED ALWAYS AS (posada_fold(guest_name)) STORED;
