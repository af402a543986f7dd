package pgstore

// SchemaVersion is the version of the tables this package writes. Open
// creates them in an empty database, applies migrations[v:] to a database
// at version v, and refuses a newer one (calstore.ErrSchema), like the
// bbolt backend's own versions (the bbolt file's "schema" key).
const SchemaVersion = 2

// migrations[v] turns a database of schema version v into version v+1; it
// runs inside the Open transaction, under an advisory lock, so instances
// starting together migrate once.
//
// Layout (version 2). Keys that come from mail (UIDs, once-only keys,
// budget keys, addresses) are bytea: a UID may hold any byte, NUL
// included, which text refuses, and bytea orders by bytes as bbolt does.
// Records are the JSON of the calstore types (their json tags, the bytes
// calstore.EncodeEvent writes for events), so both backends store the
// same values; the columns beside them are the keys the queries need.
//
//	imipd_meta   the schema version (one row)
//	users        id, primary address (unique), User JSON, changes: the
//	             CTag / sync-token counter, advanced under the row lock
//	addresses    every address (primary and aliases) -> users.id
//	events       (user, UID) -> event JSON and its change counter value
//	deleted      (user, UID) -> change counter value at deletion
//	history      per event, in insertion order (id), trimmed to MaxHistory
//	log          id (order of adding), user, once-only key UNIQUE(user, key)
//	pending      id (sequence: unique per store), user, UID, status, JSON
//	contacts     (user, address) -> Contact JSON
//	outbox       id, status, OutboxItem JSON; version 2 adds created,
//	             updated and next_attempt (Unix ns, calstore.KeyNanos) and
//	             indexes queued items by next_attempt, sent ones by updated
//	budget       one row per live use of a budget key, with its expiry
//	meta         name -> value: "alive" (Unix ns, the last sign of life any
//	             instance recorded), "downtimes" (JSON, catch-up record)
//
// Deleting a user cascades to everything of that user but the outbox.
var migrations = []string{
	0: `
CREATE TABLE users (
	id      bigserial PRIMARY KEY,
	address bytea NOT NULL UNIQUE,
	record  bytea NOT NULL,
	changes bigint NOT NULL DEFAULT 0
);
CREATE TABLE addresses (
	address bytea PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE
);
CREATE INDEX addresses_user ON addresses (user_id);
CREATE TABLE events (
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	uid     bytea NOT NULL,
	change  bigint NOT NULL,
	data    bytea NOT NULL,
	PRIMARY KEY (user_id, uid)
);
CREATE INDEX events_change ON events (user_id, change);
CREATE TABLE deleted (
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	uid     bytea NOT NULL,
	change  bigint NOT NULL,
	PRIMARY KEY (user_id, uid)
);
CREATE TABLE history (
	id      bigserial PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	uid     bytea NOT NULL,
	entry   bytea NOT NULL
);
CREATE INDEX history_event ON history (user_id, uid, id);
CREATE TABLE log (
	id      bigserial PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	key     bytea NOT NULL,
	entry   bytea NOT NULL,
	CONSTRAINT log_once UNIQUE (user_id, key)
);
CREATE INDEX log_user ON log (user_id, id);
CREATE TABLE pending (
	id      bigserial PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	uid     bytea NOT NULL,
	status  text NOT NULL,
	record  bytea NOT NULL
);
CREATE INDEX pending_user ON pending (user_id, id);
CREATE INDEX pending_uid ON pending (user_id, uid) WHERE status = 'open';
CREATE TABLE contacts (
	user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
	address bytea NOT NULL,
	record  bytea NOT NULL,
	PRIMARY KEY (user_id, address)
);
CREATE TABLE outbox (
	id     bigserial PRIMARY KEY,
	status text NOT NULL,
	record bytea NOT NULL
);
CREATE INDEX outbox_queued ON outbox (id) WHERE status = 'queued';
CREATE TABLE budget (
	id     bigserial PRIMARY KEY,
	key    bytea NOT NULL,
	expiry bigint NOT NULL
);
CREATE INDEX budget_key ON budget (key, expiry);
CREATE INDEX budget_expiry ON budget (expiry);
CREATE TABLE meta (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
`,
	// Version 2: the outbox's times as columns, so that the sender's
	// queries (calstore.OutboxTx: OutboxDue, OutboxNextDue,
	// OutboxSentBefore)
	// are index range scans. Existing rows take them from their JSON
	// (microseconds: PostgreSQL's timestamp precision).
	1: `
ALTER TABLE outbox
	ADD COLUMN created bigint NOT NULL DEFAULT 0,
	ADD COLUMN updated bigint NOT NULL DEFAULT 0,
	ADD COLUMN next_attempt bigint NOT NULL DEFAULT 0;
WITH j AS (
	SELECT id, convert_from(record, 'UTF8')::jsonb AS r FROM outbox
), s AS (
	SELECT id,
		extract(epoch FROM (r->>'created')::timestamptz) AS c,
		extract(epoch FROM (r->>'updated')::timestamptz) AS u,
		extract(epoch FROM (r->>'next_attempt')::timestamptz) AS n
	FROM j
)
UPDATE outbox o SET
	created = (greatest(0, least(s.c, 9223372036)) * 1000000000)::bigint,
	updated = (greatest(0, least(s.u, 9223372036)) * 1000000000)::bigint,
	next_attempt = (greatest(0, least(s.n, 9223372036)) * 1000000000)::bigint
FROM s WHERE o.id = s.id;
ALTER TABLE outbox
	ALTER COLUMN created DROP DEFAULT,
	ALTER COLUMN updated DROP DEFAULT,
	ALTER COLUMN next_attempt DROP DEFAULT;
DROP INDEX outbox_queued;
CREATE INDEX outbox_due ON outbox (next_attempt) WHERE status = 'queued';
CREATE INDEX outbox_sent ON outbox (updated) WHERE status = 'sent';
`,
}
