-- The audit log API (issue 16): the user agent of each event, and an index for the org's newest-first pages
-- (created_at, id) that a cursor walks.
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
CREATE INDEX audit_events_org_page ON audit_events(org_id, created_at, id);
