-- The shop's database as production has it: three million orders, their amounts in an
-- `integer` column (at most 21,474,836.47 in cents).
CREATE DATABASE shop;
\connect shop
-- One transaction from CREATE TABLE to the last row: with wal_level=minimal the rows
-- skip the WAL, which keeps the image small.
BEGIN;
CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    order_key    text NOT NULL UNIQUE,
    amount_cents integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (order_key, amount_cents, created_at)
SELECT 'seed-' || n, (n::bigint * 7919) % 100000 + 1, timestamptz '2024-01-01' + n * interval '15 seconds'
FROM generate_series(1, 3000000) AS n;
COMMIT;
VACUUM ANALYZE orders;
CHECKPOINT;
