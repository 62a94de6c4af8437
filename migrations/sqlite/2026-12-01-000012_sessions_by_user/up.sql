-- Ending every sign-in of a user (a password change, signing out everywhere) finds their
-- refresh tokens by user.
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
