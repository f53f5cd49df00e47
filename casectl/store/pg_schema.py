"""The PostgreSQL schema: what migrations 0001-0012 build on SQLite, in PostgreSQL's terms.

`BASELINE` is the schema at `BASELINE_VERSION`; `casectl init` on an empty PostgreSQL
database creates it in one transaction and records every migration name up to it, so
both backends agree on the version. A migration after it has its SQL for both (see
store/migrations.py: PG_MIGRATIONS).

What differs from SQLite, and why:
- ids are assigned as SQLite assigns an INTEGER PRIMARY KEY (one more than the largest,
  by trigger, under the writer lock), so ids are the same on both and `db copy` keeps them;
- times stay ISO-8601 UTC text (`2026-12-02T14:00:00Z`): they sort and compare as on
  SQLite, and every output is byte-identical;
- JSON stays text as written (key order is part of the hash chain and of `show`), and
  the columns that `--where data.PATH=VALUE` reads are indexed as jsonb (GIN,
  jsonb_path_ops): `cases.data`, `cases.registry_data`, `subjects.data` (read with any
  `\u0000` escape left out: jsonb cannot hold one, the text keeps it);
- search is a tsvector per case (simple configuration over unaccented, lower-cased
  words split as SQLite's unicode61 tokenizer splits them), with a GIN index;
- events are append-only by trigger (and, for the roles `db grant` makes, by privilege):
  only a transaction that says `SET LOCAL casectl.purging = 'on'` may delete (retention),
  and only a role that holds DELETE on events can;
- documents are bytea, read in slices.
"""

from __future__ import annotations

BASELINE_VERSION = 12

BASELINE = r"""
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE FUNCTION casectl_next_id() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE next_id bigint;
BEGIN
  IF NEW.id IS NULL THEN
    EXECUTE format('SELECT coalesce(max(id), 0) + 1 FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO next_id;
    NEW.id := next_id;
  END IF;
  RETURN NEW;
END $$;

CREATE TABLE _migrations (name text PRIMARY KEY, applied_at text);
CREATE TABLE settings (key text PRIMARY KEY, value text);

CREATE TABLE workflows (
  name text NOT NULL, version bigint NOT NULL, definition text NOT NULL, builtin bigint DEFAULT 0,
  created_at text NOT NULL, created_by text, PRIMARY KEY (name, version)
);

CREATE TABLE subjects (
  id bigint PRIMARY KEY, ref text, name text, email text, email_key text, dob text, country text,
  entity_type text NOT NULL DEFAULT 'person', data text NOT NULL DEFAULT '{}',
  created_at text NOT NULL, updated_at text NOT NULL, redacted_at text
);
CREATE UNIQUE INDEX idx_subjects_email_key ON subjects (email_key);
CREATE UNIQUE INDEX idx_subjects_ref ON subjects (ref);
CREATE INDEX idx_subjects_country ON subjects (country);
CREATE INDEX idx_subjects_name ON subjects (lower(name));
CREATE INDEX idx_subjects_data ON subjects USING gin ((replace(data, '\u0000', '')::jsonb) jsonb_path_ops);

CREATE TABLE cases (
  id bigint PRIMARY KEY, ref text, workflow text NOT NULL, workflow_version bigint NOT NULL,
  status text NOT NULL, final bigint NOT NULL DEFAULT 0, subject_id bigint REFERENCES subjects (id),
  parent_id bigint REFERENCES cases (id), data text NOT NULL DEFAULT '{}',
  registry_data text NOT NULL DEFAULT '{}', assignee text, team text,
  priority text NOT NULL DEFAULT 'normal', created_at text NOT NULL, updated_at text NOT NULL,
  due_at text, decided_at text, decision text, decision_reason text,
  origin text NOT NULL DEFAULT 'command', created_by text, last_editor text,
  version bigint NOT NULL DEFAULT 1, sla_paused_at text, sla_remaining bigint, decided_by text,
  status_since text
);
CREATE UNIQUE INDEX idx_cases_ref ON cases (ref);
CREATE INDEX idx_cases_assignee ON cases (assignee);
CREATE INDEX idx_cases_assignee_status ON cases (assignee, status);
CREATE INDEX idx_cases_created_at ON cases (created_at);
CREATE INDEX idx_cases_decided_at ON cases (decided_at);
CREATE INDEX idx_cases_final ON cases (final);
CREATE INDEX idx_cases_final_assignee ON cases (final, assignee);
CREATE INDEX idx_cases_final_decided_at ON cases (final, decided_at);
CREATE INDEX idx_cases_final_due_at ON cases (final, due_at);
CREATE INDEX idx_cases_final_status ON cases (final, status);
CREATE INDEX idx_cases_final_team ON cases (final, team);
CREATE INDEX idx_cases_final_workflow ON cases (final, workflow);
CREATE INDEX idx_cases_parent_id ON cases (parent_id);
CREATE INDEX idx_cases_priority ON cases (priority);
CREATE INDEX idx_cases_queue ON cases (created_at) WHERE assignee IS NULL AND final = 0;
CREATE INDEX idx_cases_status ON cases (status);
CREATE INDEX idx_cases_status_since ON cases (status, status_since);
CREATE INDEX idx_cases_status_workflow ON cases (status, workflow);
CREATE INDEX idx_cases_subject_id ON cases (subject_id);
CREATE INDEX idx_cases_team ON cases (team);
CREATE INDEX idx_cases_workflow ON cases (workflow);
CREATE INDEX idx_cases_data ON cases USING gin ((replace(data, '\u0000', '')::jsonb) jsonb_path_ops);
CREATE INDEX idx_cases_registry_data ON cases USING gin ((replace(registry_data, '\u0000', '')::jsonb) jsonb_path_ops);

-- A case's workflow version must be recorded (SQLite: the trigger cases_workflow_exists).
ALTER TABLE cases ADD CONSTRAINT cases_workflow_exists
  FOREIGN KEY (workflow, workflow_version) REFERENCES workflows (name, version);

CREATE TABLE case_tags (
  case_id bigint NOT NULL REFERENCES cases (id), tag text NOT NULL, PRIMARY KEY (case_id, tag)
);
CREATE INDEX idx_case_tags_tag_case_id ON case_tags (tag, case_id);

CREATE TABLE blocks (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), name text NOT NULL,
  kind text NOT NULL, status text, data text NOT NULL DEFAULT '{}', child_case_id bigint REFERENCES cases (id),
  decided_by text, decided_at text, created_at text NOT NULL, updated_at text NOT NULL
);
CREATE UNIQUE INDEX idx_blocks_case_id_name ON blocks (case_id, name);
CREATE INDEX idx_blocks_child_case_id ON blocks (child_case_id);

CREATE TABLE activities (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), type text NOT NULL, label text,
  state text NOT NULL, assignee text, team text, requirement text NOT NULL DEFAULT '{}',
  result text NOT NULL DEFAULT '{}', decision text, decided_by text, decided_at text,
  created_at text NOT NULL, updated_at text NOT NULL, created_by text
);
CREATE INDEX idx_activities_case_id ON activities (case_id);
CREATE INDEX idx_activities_state_type ON activities (state, type);
CREATE INDEX idx_activities_team_state ON activities (team, state);

CREATE TABLE events (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), at text NOT NULL, actor text NOT NULL,
  kind text NOT NULL, action text, from_status text, to_status text, reason text,
  data text NOT NULL DEFAULT '{}', prev_hash text, hash text NOT NULL, login text, text_hash text
);
CREATE INDEX idx_events_at ON events (at);
CREATE INDEX idx_events_case_id_id ON events (case_id, id);

CREATE FUNCTION casectl_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('casectl.purging', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'events are append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  FOR EACH ROW EXECUTE FUNCTION casectl_events_append_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION casectl_events_append_only();

CREATE TABLE event_texts (
  event_id bigint PRIMARY KEY REFERENCES events (id), fields text NOT NULL, salt text, body text, erased_at text
);

CREATE TABLE chain_heads (
  case_id bigint PRIMARY KEY, events bigint NOT NULL, last_event bigint NOT NULL, last_at text NOT NULL,
  head text NOT NULL, purged_at text, mac text NOT NULL
);
CREATE TABLE chain_seal (
  id bigint PRIMARY KEY CHECK (id = 1), last_case bigint NOT NULL, last_event bigint NOT NULL, mac text NOT NULL
);

CREATE TABLE notes (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), at text NOT NULL, actor text NOT NULL,
  text text NOT NULL, private bigint NOT NULL DEFAULT 0, event_id bigint REFERENCES events (id)
);
CREATE INDEX idx_notes_case_id ON notes (case_id);

CREATE TABLE documents (
  sha256 text PRIMARY KEY, size bigint NOT NULL, media_type text, created_at text NOT NULL, content bytea NOT NULL
);
ALTER TABLE documents ALTER COLUMN content SET STORAGE EXTERNAL;

CREATE TABLE attachments (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), block_id bigint REFERENCES blocks (id),
  sha256 text NOT NULL REFERENCES documents (sha256), filename text, media_type text, size bigint NOT NULL,
  created_at text NOT NULL, created_by text
);
CREATE INDEX idx_attachments_block_id ON attachments (block_id);
CREATE INDEX idx_attachments_case_id ON attachments (case_id);

CREATE TABLE outbox (
  id bigint PRIMARY KEY, case_id bigint REFERENCES cases (id), event_id bigint REFERENCES events (id),
  kind text NOT NULL, target text, payload text NOT NULL, status text NOT NULL DEFAULT 'pending',
  attempts bigint NOT NULL DEFAULT 0, next_attempt_at text, last_error text, created_at text NOT NULL,
  updated_at text NOT NULL, delivered_at text, claimed_until text, claimed_by text
);
CREATE INDEX idx_outbox_case_id ON outbox (case_id);
CREATE INDEX idx_outbox_status_next_attempt_at ON outbox (status, next_attempt_at);

-- What this session queued (store/outbox.py track_queued): the session's temporary table, when it has one.
CREATE FUNCTION casectl_outbox_queued_here() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.outbox_queued_here') IS NOT NULL
     AND (TG_OP = 'INSERT' OR (OLD.status = 'failed' AND NEW.status = 'pending')) THEN
    INSERT INTO pg_temp.outbox_queued_here (id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER outbox_queued_here AFTER INSERT OR UPDATE OF status ON outbox
  FOR EACH ROW EXECUTE FUNCTION casectl_outbox_queued_here();

CREATE TABLE hooks (
  id bigint PRIMARY KEY, url text NOT NULL, event text NOT NULL, workflow text, secret_env text,
  created_at text NOT NULL, created_by text
);

CREATE TABLE views (
  name text PRIMARY KEY, filters text NOT NULL, builtin bigint DEFAULT 0, created_at text NOT NULL, created_by text
);

CREATE TABLE erasures (
  id bigint PRIMARY KEY, at text NOT NULL, actor text NOT NULL, kind text NOT NULL, details text NOT NULL
);

CREATE TABLE appointments (
  id bigint PRIMARY KEY, case_id bigint NOT NULL REFERENCES cases (id), starts_at text NOT NULL,
  minutes bigint NOT NULL, title text NOT NULL, with_whom text, created_at text NOT NULL,
  created_by text NOT NULL, cancelled_at text, cancel_reason text
);
CREATE INDEX idx_appointments_case_id_starts_at ON appointments (case_id, starts_at);
CREATE INDEX idx_appointments_starts_at ON appointments (starts_at);

CREATE TABLE users (name text PRIMARY KEY, roles text NOT NULL DEFAULT '[]', created_at text NOT NULL, created_by text);

CREATE TABLE routine_runs (
  case_id bigint NOT NULL REFERENCES cases (id), routine text NOT NULL, entered bigint NOT NULL,
  state text NOT NULL, attempts bigint NOT NULL DEFAULT 0, last_error text, event_id bigint, at text NOT NULL,
  PRIMARY KEY (case_id, routine, entered)
);

-- JSON paths as SQLite's json_extract reads them ($."a"."b"), and `--where data.PATH=VALUE`
-- (store/cases.py where_sql) as a containment the GIN indexes serve, checked exactly after.
CREATE FUNCTION casectl_json_extract(doc text, path text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_path_query_first(replace(doc, '\u0000', '')::jsonb, path::jsonpath) #>> '{}'
$$;
CREATE FUNCTION casectl_json_doc(path text, v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE keys text[]; doc jsonb := v; i int;
BEGIN
  SELECT array_agg(m[1]) INTO keys FROM regexp_matches(path, '\."([^"]*)"', 'g') AS m;
  IF keys IS NULL THEN RETURN NULL; END IF;
  FOR i IN REVERSE array_length(keys, 1)..1 LOOP
    doc := jsonb_build_object(keys[i], doc);
  END LOOP;
  RETURN doc;
END $$;
CREATE FUNCTION casectl_json_number(value text) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF value ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN RETURN value::jsonb; END IF;
  IF value IN ('true', 'false') THEN RETURN value::jsonb; END IF;
  RETURN to_jsonb(value);
END $$;
-- STABLE (to_jsonb is), so the planner inlines it and the containment meets the GIN index.
CREATE FUNCTION casectl_json_path_eq(doc text, path text, value text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT (replace(doc, '\u0000', '')::jsonb @> casectl_json_doc(path, to_jsonb(value))
          OR replace(doc, '\u0000', '')::jsonb @> casectl_json_doc(path, casectl_json_number(value)))
     AND casectl_json_extract(doc, path) = value
$$;

-- Search: one row per case, its words as SQLite's unicode61 tokenizer would split them.
CREATE FUNCTION casectl_words(text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT regexp_replace(lower(unaccent(coalesce($1, ''))), '[^[:alnum:]]+', ' ', 'g')
$$;
-- A tsquery's words folded as casectl_words folds a document's (its operators are ASCII: kept).
CREATE FUNCTION casectl_query_words(text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT lower(unaccent($1))
$$;
CREATE TABLE case_search (
  id bigint PRIMARY KEY, case_no text, ref text, name text, email text, dob text, doc tsvector NOT NULL
);
CREATE INDEX idx_case_search_doc ON case_search USING gin (doc);

CREATE FUNCTION casectl_search_doc(case_no text, ref text, name text, email text, dob text) RETURNS tsvector
LANGUAGE sql STABLE AS $$
  SELECT setweight(to_tsvector('simple', casectl_words(case_no)), 'A')
      || setweight(to_tsvector('simple', casectl_words(ref)), 'A')
      || setweight(to_tsvector('simple', casectl_words(name)), 'B')
      || setweight(to_tsvector('simple', casectl_words(email)), 'C')
      || setweight(to_tsvector('simple', casectl_words(dob)), 'D')
$$;

-- store/bulk.py search_rows_later: inside it (SET LOCAL casectl.search_later = 'on') new cases
-- get their search rows in one statement at the end instead of one run of this per case.
CREATE FUNCTION casectl_search_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    DELETE FROM case_search WHERE id = OLD.id;
  END IF;
  INSERT INTO case_search (id, case_no, ref, name, email, dob, doc)
  SELECT NEW.id, 'C-' || NEW.id, NEW.ref, s.name, s.email, s.dob,
         casectl_search_doc('C-' || NEW.id, NEW.ref, s.name, s.email, s.dob)
  FROM (SELECT 1) one LEFT JOIN subjects s ON s.id = NEW.subject_id;
  RETURN NEW;
END $$;
CREATE TRIGGER case_search_insert AFTER INSERT ON cases FOR EACH ROW
  WHEN (current_setting('casectl.search_later', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION casectl_search_case();
CREATE TRIGGER case_search_update AFTER UPDATE OF ref, subject_id ON cases
  FOR EACH ROW EXECUTE FUNCTION casectl_search_case();

CREATE FUNCTION casectl_search_case_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM case_search WHERE id = OLD.id;
  RETURN OLD;
END $$;
CREATE TRIGGER case_search_delete AFTER DELETE ON cases FOR EACH ROW EXECUTE FUNCTION casectl_search_case_deleted();

CREATE FUNCTION casectl_search_subject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM case_search WHERE id IN (SELECT id FROM cases WHERE subject_id = NEW.id);
  INSERT INTO case_search (id, case_no, ref, name, email, dob, doc)
  SELECT c.id, 'C-' || c.id, c.ref, NEW.name, NEW.email, NEW.dob,
         casectl_search_doc('C-' || c.id, c.ref, NEW.name, NEW.email, NEW.dob)
  FROM cases c WHERE c.subject_id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER case_search_subject AFTER UPDATE OF name, email, dob ON subjects
  FOR EACH ROW EXECUTE FUNCTION casectl_search_subject();
"""

# Tables whose ids are assigned by casectl_next_id().
ID_TABLES = (
    "activities",
    "appointments",
    "attachments",
    "blocks",
    "cases",
    "erasures",
    "events",
    "hooks",
    "notes",
    "outbox",
    "subjects",
)


def baseline_statements() -> str:
    ids = "\n".join(
        f"CREATE TRIGGER {t}_next_id BEFORE INSERT ON {t} FOR EACH ROW WHEN (NEW.id IS NULL) "
        "EXECUTE FUNCTION casectl_next_id();"
        for t in ID_TABLES
    )
    return BASELINE + "\n" + ids + "\n"
