-- When a refresh token's family (the login it descends from) began, carried
-- by every token of the family, so that a session ends
-- Config.RefreshFamilyLifetime after its login however often it rotates.
-- Tokens issued before this column existed take the earliest creation time
-- still stored in their family.
ALTER TABLE iam_refresh_tokens ADD COLUMN family_created_at BIGINT NOT NULL DEFAULT 0;
UPDATE iam_refresh_tokens SET family_created_at = (SELECT MIN(f.created_at) FROM iam_refresh_tokens f WHERE f.family_id = iam_refresh_tokens.family_id);
