-- The authentication methods (RFC 8176 amr values, space separated) that
-- a login used, so that the ID token's amr says what really happened: on
-- the authorization request the login completed, on the browser session
-- that may answer later requests (single sign-on), and on the refresh
-- tokens whose ID tokens repeat the login's amr. Rows from before this
-- migration say 'pwd': the only method that is certain for them, so that
-- none of them ever claims a second factor.
ALTER TABLE iam_auth_requests ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE iam_browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE iam_refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
