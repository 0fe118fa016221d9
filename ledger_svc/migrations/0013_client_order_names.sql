-- Binance's string client order ids (issue 24). The gateway hashes a `newClientOrderId` that is
-- not a small number into the engine's numeric client id and keeps the string here, written
-- before the order is placed, so every later answer can show it again.
CREATE TABLE client_order_names (
    user_id         bigint NOT NULL,
    client_order_id bigint NOT NULL,
    name            text   NOT NULL CHECK (length(name) BETWEEN 1 AND 36),
    PRIMARY KEY (user_id, client_order_id)
);
