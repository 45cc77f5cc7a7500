-- Hotel staff (issue 15): accounts per hotel with a role, and their login sessions.
-- An e-mail is stored as given but matched folded to lower case, once per hotel.
CREATE TABLE staff (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    role text NOT NULL CHECK (role IN ('owner', 'manager', 'reception')),
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);

-- A session is the SHA-256 of the cookie's random token (a leaked table logs nobody in)
-- and the CSRF token every state-changing request must echo. Removing a member ends
-- their sessions.
CREATE TABLE staff_sessions (
    token_hash bytea PRIMARY KEY,
    staff_id bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);
