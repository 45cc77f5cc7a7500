-- The staff's side of conversations (issue 15): staff replies, a human handoff, the
-- guest's thumbs-down, and the staff's conversation list.

-- A staff member's reply is a message of its own role, with who wrote it; a 'notice' is
-- what posada tells the guest about the handoff ("a person will answer you here").
ALTER TABLE messages DROP CONSTRAINT messages_role_check;
ALTER TABLE messages ADD CONSTRAINT messages_role_check
    CHECK (role IN ('guest', 'assistant', 'staff', 'notice'));
ALTER TABLE messages ADD COLUMN staff_id bigint REFERENCES staff (id) ON DELETE SET NULL;
-- The guest's verdict on an answer: -1 unhelpful, 1 helpful, NULL none given.
ALTER TABLE messages ADD COLUMN feedback smallint CHECK (feedback IN (-1, 1));

-- NULL: posada answers. 'waiting': the guest asked for a person and none has replied yet.
-- 'staff': a person has the conversation; posada stays silent until it is handed back.
ALTER TABLE conversations ADD COLUMN handoff text CHECK (handoff IN ('waiting', 'staff'));
ALTER TABLE conversations ADD COLUMN handoff_at timestamptz;

-- The staff's list: a hotel's conversations, most recently active first, keyset on
-- (updated_at, id).
CREATE INDEX conversations_staff_idx ON conversations (tenant_id, updated_at DESC, id DESC);
-- The inbox: the conversations waiting for a person.
CREATE INDEX conversations_handoff_idx ON conversations (tenant_id, handoff_at)
    WHERE handoff IS NOT NULL;
-- The report of what went unanswered or was marked unhelpful.
CREATE INDEX messages_feedback_idx ON messages (tenant_id, id) WHERE feedback = -1;
