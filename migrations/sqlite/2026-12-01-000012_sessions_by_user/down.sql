DROP INDEX refresh_tokens_by_user;
