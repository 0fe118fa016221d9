-- What an API key may do and from where, and the audit log of who did what, from where, when.

-- Keys made before scopes existed keep what they could do: read and trade.
ALTER TABLE api_keys
    ADD COLUMN permissions  text[] NOT NULL DEFAULT '{read,trade}',
    ADD COLUMN ip_allowlist text[] NOT NULL DEFAULT '{}';

CREATE TABLE audit_log (
    audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_us      bigint NOT NULL,
    action     text NOT NULL,  -- signup, login, login_failed, apikey_create, market_halt, ...
    actor      text NOT NULL,  -- who acted: "user:7", "admin", or the email a log-in named
    user_id    bigint,         -- the account acted upon, when there is one
    address    text NOT NULL,  -- the client's address as the gateway saw it ("" for the CLI)
    request_id text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_user ON audit_log (user_id, audit_id) WHERE user_id IS NOT NULL;

-- Append-only in the database itself, whatever a caller of the ledger asks.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
