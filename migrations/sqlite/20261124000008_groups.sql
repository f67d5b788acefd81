-- Group -> role mapping per connection (SAML and LDAP carry groups): {"rules": [{"group", "role"}], "required": bool}.
-- Applied at every sign-in, so a group change takes effect at the next one.
ALTER TABLE connections ADD COLUMN group_roles TEXT NOT NULL DEFAULT '{}';
