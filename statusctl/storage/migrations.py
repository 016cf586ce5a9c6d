"""Named, ordered schema migrations. A shipped migration is never edited: add a new one."""

from __future__ import annotations

_OPS = ("INSERT", "UPDATE", "DELETE")


def _bump_triggers(counter: str, changes: list[tuple[str, str]]) -> str:
    """Triggers that add one to the `meta` counter on each (table, operation)."""
    return "".join(
        f"CREATE TRIGGER {table}_{op.lower()}_bumps_{counter} AFTER {op} ON {table}\n"
        f"BEGIN\n    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = '{counter}';\nEND;\n"
        for table, op in changes
    )


MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE settings (
            name  TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE labels (
            name    TEXT PRIMARY KEY COLLATE NOCASE,
            scope   TEXT NOT NULL CHECK (scope IN ('item', 'order', 'both')),
            builtin INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE label_maps (
            label TEXT NOT NULL COLLATE NOCASE REFERENCES labels(name) ON DELETE CASCADE,
            cart  TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (label, cart)
        );
        CREATE TABLE events (
            name        TEXT PRIMARY KEY,
            item_label  TEXT COLLATE NOCASE REFERENCES labels(name),
            order_label TEXT COLLATE NOCASE REFERENCES labels(name),
            fires       INTEGER NOT NULL,
            notify      INTEGER NOT NULL
        );
        CREATE TABLE stores (
            name    TEXT PRIMARY KEY,
            cart    TEXT NOT NULL,
            url     TEXT NOT NULL,
            secrets TEXT NOT NULL DEFAULT '{}',
            options TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL
        );
        CREATE TABLE orders (
            id               INTEGER PRIMARY KEY,
            number           TEXT NOT NULL UNIQUE,
            store            TEXT NOT NULL REFERENCES stores(name),
            order_date       TEXT NOT NULL,
            customer_name    TEXT NOT NULL,
            customer_email   TEXT NOT NULL,
            ship_postal_code TEXT NOT NULL,
            cart_order_id    TEXT,
            label            TEXT COLLATE NOCASE,
            imported         TEXT NOT NULL
        );
        CREATE INDEX orders_store ON orders(store);
        CREATE INDEX orders_label ON orders(label);
        CREATE TABLE items (
            id           INTEGER PRIMARY KEY,
            order_id     INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            line         INTEGER NOT NULL,
            sku          TEXT NOT NULL,
            name         TEXT NOT NULL,
            quantity     INTEGER NOT NULL,
            shipped      INTEGER NOT NULL DEFAULT 0,
            cancelled    INTEGER NOT NULL DEFAULT 0,
            label        TEXT COLLATE NOCASE,
            cart_line_id TEXT,
            UNIQUE (order_id, sku)
        );
        CREATE TABLE packages (
            id       INTEGER PRIMARY KEY,
            order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            tracking TEXT,
            carrier  TEXT,
            shipped  TEXT NOT NULL
        );
        CREATE INDEX packages_order ON packages(order_id);
        CREATE TABLE package_items (
            package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
            item_id    INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            quantity   INTEGER NOT NULL,
            PRIMARY KEY (package_id, item_id)
        );
        CREATE TABLE label_history (
            id         INTEGER PRIMARY KEY,
            at         TEXT NOT NULL,
            order_id   INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
            item_id    INTEGER REFERENCES items(id) ON DELETE CASCADE,
            event      TEXT NOT NULL,
            from_label TEXT,
            to_label   TEXT
        );
        CREATE INDEX label_history_order ON label_history(order_id);
        -- The outbox. seq keeps queue order (AUTOINCREMENT: never reused);
        -- uid is the stable id every attempt carries (webhook-id / Idempotency-Key).
        CREATE TABLE stack (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            uid          TEXT NOT NULL UNIQUE,
            order_id     INTEGER NOT NULL,
            order_number TEXT NOT NULL,
            store        TEXT NOT NULL,
            destination  TEXT NOT NULL,
            payload      TEXT NOT NULL,
            queued       REAL NOT NULL,
            state        TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'failed')),
            attempts     INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            lease_owner  TEXT,
            lease_until  REAL,
            last_status  INTEGER,
            last_error   TEXT,
            last_answer  TEXT
        );
        CREATE INDEX stack_order ON stack(order_id, seq);
        CREATE INDEX stack_due ON stack(state, next_attempt);
        CREATE TABLE stack_history (
            id           INTEGER PRIMARY KEY,
            at           REAL NOT NULL,
            uid          TEXT NOT NULL,
            store        TEXT NOT NULL,
            destination  TEXT NOT NULL,
            order_number TEXT NOT NULL,
            attempt      INTEGER NOT NULL,
            outcome      TEXT NOT NULL,
            status       INTEGER,
            reason       TEXT,
            answer       TEXT,
            duration_ms  INTEGER,
            controller   TEXT
        );
        CREATE INDEX stack_history_order ON stack_history(order_number);
        CREATE INDEX stack_history_at ON stack_history(at);
        CREATE TABLE controllers (
            id        TEXT PRIMARY KEY,
            pid       INTEGER NOT NULL,
            host      TEXT NOT NULL,
            started   REAL NOT NULL,
            heartbeat REAL NOT NULL,
            mode      TEXT NOT NULL,
            sent      INTEGER NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        # Controllers that run for weeks notice new stores and label mappings by this counter.
        "0002_config_version",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('config_version', '0');\n"
        + _bump_triggers("config_version", [("stores", op) for op in _OPS] + [("label_maps", op) for op in _OPS]),
    ),
    (
        # Built-in labels that had no mapping for a cart type that needs one (Payment Received for
        # WooCommerce failed every record): added where the label exists and has no such mapping yet.
        "0003_default_label_maps",
        "".join(
            "INSERT OR IGNORE INTO label_maps (label, cart, value) "
            f"SELECT name, '{cart}', '{value}' FROM labels WHERE name = '{label}' AND builtin = 1;\n"
            for label, cart, value in [
                ("Order Received", "woocommerce", "note"),
                ("Order Received", "magento2", "comment"),
                ("Payment Received", "woocommerce", "processing"),
                ("Payment Received", "bigcommerce", "11"),
                ("Payment Received", "magento2", "comment"),
                ("Payment Received", "prestashop", "Payment accepted"),
                ("Payment Received", "opencart", "2"),
            ]
        ),
    ),
]

# Issue 12 (the stack under load) and 11.5 (only attempts with an outcome count). stack_heads
# holds each order's first record (the only one a claim may take) with a copy of its due-ness and
# the order's record count; stack_counts the records per destination. Records are queued only
# through statusctl.storage.stack.queue, which adds to both in two statements per batch (a trigger
# per inserted row doubled the cost of a bulk apply); the triggers below follow every update and
# delete, so a claim, `stack status` and `stack list` cost the same with a million records as
# with a thousand. store_health is what controllers share about a destination: the
# circuit breaker, a misconfiguration seen by a controller, and the rate limiter's next start.
_FAIR_STACK = """
ALTER TABLE stack ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stack ADD COLUMN unsettled INTEGER NOT NULL DEFAULT 0;
UPDATE stack SET claims = attempts;
CREATE TABLE stack_heads (
    order_id     INTEGER PRIMARY KEY,
    seq          INTEGER NOT NULL,
    destination  TEXT NOT NULL,
    state        TEXT NOT NULL,
    next_attempt REAL NOT NULL,
    lease_until  REAL,
    queued       REAL NOT NULL,
    records      INTEGER NOT NULL
);
CREATE INDEX stack_heads_due ON stack_heads(destination, state, next_attempt, seq);
CREATE INDEX stack_heads_oldest ON stack_heads(destination, queued);
CREATE INDEX stack_heads_leased ON stack_heads(lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX stack_destination ON stack(destination, seq);
-- stack top's last errors, however many OKs the history holds (the query repeats this WHERE).
CREATE INDEX stack_history_errors ON stack_history(id) WHERE outcome IN ('retry', 'failed');
INSERT INTO stack_heads (order_id, seq, destination, state, next_attempt, lease_until, queued, records)
    SELECT s.order_id, s.seq, s.destination, s.state, s.next_attempt, s.lease_until, s.queued,
           (SELECT COUNT(*) FROM stack c WHERE c.order_id = s.order_id)
    FROM stack s WHERE s.seq = (SELECT MIN(t.seq) FROM stack t WHERE t.order_id = s.order_id);
CREATE TABLE stack_counts (
    destination TEXT PRIMARY KEY,
    records     INTEGER NOT NULL
);
INSERT INTO stack_counts (destination, records) SELECT destination, COUNT(*) FROM stack GROUP BY destination;
CREATE TABLE store_health (
    destination   TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL DEFAULT 0,
    opened        INTEGER NOT NULL DEFAULT 0,
    paused_until  REAL,
    reason        TEXT,
    since         REAL,
    probe_owner   TEXT,
    probe_until   REAL,
    misconfigured TEXT,
    misconfigured_by TEXT,
    misconfigured_at REAL,
    next_start    REAL
);
CREATE TRIGGER stack_update_keeps_heads AFTER UPDATE OF state, next_attempt, lease_until, queued ON stack
BEGIN
    UPDATE stack_heads SET state = new.state, next_attempt = new.next_attempt, lease_until = new.lease_until,
        queued = new.queued WHERE order_id = new.order_id AND seq = new.seq;
END;
CREATE TRIGGER stack_delete_keeps_heads AFTER DELETE ON stack
BEGIN
    UPDATE stack_heads SET records = records - 1 WHERE order_id = old.order_id;
    DELETE FROM stack_heads WHERE order_id = old.order_id AND records <= 0;
    UPDATE stack_heads SET (seq, destination, state, next_attempt, lease_until, queued) =
        (SELECT seq, destination, state, next_attempt, lease_until, queued FROM stack
         WHERE order_id = old.order_id ORDER BY seq LIMIT 1)
        WHERE order_id = old.order_id AND seq = old.seq;
    UPDATE stack_counts SET records = records - 1 WHERE destination = old.destination;
END;
"""

MIGRATIONS.append(("0004_fair_stack", _FAIR_STACK))

# Issue 12, after 0004: the head triggers follow updates of a record's state, due time, lease and
# queue time, not of its order, destination or seq. Nothing moves a record today; one moved would
# get no head (never claimed) or a wrong destination count, so such an update is refused.
_STACK_KEYS_FIXED = """
CREATE TRIGGER stack_keys_fixed BEFORE UPDATE OF order_id, destination, seq ON stack
WHEN new.order_id IS NOT old.order_id OR new.destination IS NOT old.destination OR new.seq IS NOT old.seq
BEGIN
    SELECT RAISE(ABORT, 'a record on the stack keeps its order, destination and seq: queue a new record instead');
END;
"""

MIGRATIONS.append(("0005_stack_keys_fixed", _STACK_KEYS_FIXED))

# Issue 14, after 0005: PostgreSQL's 0006 (statusctl.storage.pgschema) gives its labels SQLite's
# rowid as a column, makes the label history a log without foreign keys and compresses payloads
# with lz4. SQLite has the rowid already, its foreign-key checks are in-process index lookups, and
# it has no lz4. The migration is recorded here too, so both backends keep one list of migration
# names (`db copy` compares them).
_POSTGRESQL_ONLY = """
-- Nothing to change on SQLite.
"""

MIGRATIONS.append(("0006_postgresql_only", _POSTGRESQL_ONLY))
