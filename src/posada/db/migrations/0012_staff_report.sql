-- The staff's report of what went unanswered (issue 15): the answers posada declined are
-- those with no source at all (the offline responder found nothing relevant and said so,
-- or the exact cache gave such an answer again), found by the hotel and the day they were
-- given without reading every message. The thumbs-down side has messages_feedback_idx.
CREATE INDEX messages_declined_idx ON messages (tenant_id, created_at)
    WHERE role = 'assistant' AND sources = '[]'::jsonb;
