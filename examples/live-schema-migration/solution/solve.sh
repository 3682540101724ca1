#!/bin/bash
# integer -> bigint online: a new column kept in step by a trigger, a batched backfill,
# NOT NULL proven by a validated CHECK, then a swap in one short transaction. Only the
# first ALTER and the swap take the table's exclusive lock, each for milliseconds, and
# each gives up after 300 ms rather than queue the API's writes behind it.
set -euo pipefail
step() { echo "$(date +%T.%3N) $*"; }
sql() { psql --no-psqlrc --quiet --host=127.0.0.1 --username=postgres --dbname=shop --set=ON_ERROR_STOP=1 "$@"; }

# Runs SQL from stdin that needs the exclusive lock, until it gets it within its timeout.
with_short_lock() {
    local script
    script=$(cat)
    for attempt in $(seq 1 50); do
        if printf 'SET lock_timeout = %s;\n%s\n' "'300ms'" "$script" | sql; then
            return 0
        fi
        echo "lock not granted (attempt $attempt); retrying" >&2
        sleep 0.5
    done
    return 1
}

step "add amount_cents_new and its trigger"
with_short_lock <<'SQL'
BEGIN;
ALTER TABLE orders ADD COLUMN amount_cents_new bigint;
CREATE FUNCTION orders_amount_cents_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.amount_cents_new := NEW.amount_cents;
    RETURN NEW;
END $$;
CREATE TRIGGER orders_amount_cents_sync BEFORE INSERT OR UPDATE OF amount_cents ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_amount_cents_sync();
COMMIT;
SQL

# Every row older than the trigger, 20,000 at a time, each batch its own transaction.
step "backfill"
sql <<'SQL'
DO $$
DECLARE
    low bigint := (SELECT min(id) FROM orders);
    last bigint := (SELECT max(id) FROM orders);
BEGIN
    WHILE low <= last LOOP
        UPDATE orders SET amount_cents_new = amount_cents
        WHERE id >= low AND id < low + 20000 AND amount_cents_new IS NULL;
        COMMIT;
        low := low + 20000;
    END LOOP;
END $$;
SQL

# The backfill left two million dead rows: vacuum them now rather than have autovacuum
# hold up the swap. Then prove NOT NULL without blocking writes.
step "vacuum"
sql --command="VACUUM orders"
step "validate NOT NULL"
sql <<'SQL'

ALTER TABLE orders ADD CONSTRAINT amount_cents_new_not_null CHECK (amount_cents_new IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT amount_cents_new_not_null;
SQL

# SET NOT NULL trusts the validated CHECK (no scan); the rest is catalogue-only.
step "swap the columns"
with_short_lock <<'SQL'
BEGIN;
ALTER TABLE orders ALTER COLUMN amount_cents_new SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT amount_cents_new_not_null;
DROP TRIGGER orders_amount_cents_sync ON orders;
ALTER TABLE orders DROP COLUMN amount_cents;
ALTER TABLE orders RENAME COLUMN amount_cents_new TO amount_cents;
COMMIT;
SQL
sql --command="DROP FUNCTION orders_amount_cents_sync()"
step "done"
sql --command="\d orders"
