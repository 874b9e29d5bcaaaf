-- Switchboard's state as ordered key-value trees (the layout the sled backend has on disk).
-- bytea compares byte by byte, so scans come back in sled's key order.
CREATE TABLE switchboard_kv (
    tree  text  NOT NULL,
    key   bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (tree, key)
);

-- Monotonic ids shared by every instance (audit sequence numbers and the like).
CREATE SEQUENCE switchboard_ids;
