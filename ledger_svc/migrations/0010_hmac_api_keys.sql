-- HMAC-SHA256 API keys (Binance's kind) beside ED25519 ones. An HMAC key's `public_key` is
-- its API key (64 letters and digits, never a 44-character base64 ED25519 key); its secret
-- is kept only sealed by the gateway's deployment key, which the database never sees.
ALTER TABLE api_keys
    ADD COLUMN kind          text NOT NULL DEFAULT 'ed25519',
    ADD COLUMN sealed_secret bytea,
    ADD CONSTRAINT api_keys_kind CHECK (kind IN ('ed25519', 'hmac')),
    ADD CONSTRAINT api_keys_hmac_sealed CHECK ((kind = 'hmac') = (sealed_secret IS NOT NULL));
