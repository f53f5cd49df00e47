-- index idx_activities_case_id
CREATE INDEX "idx_activities_case_id"
    ON "activities" ("case_id");
-- index idx_activities_state_type
CREATE INDEX "idx_activities_state_type"
    ON "activities" ("state", "type");
-- index idx_activities_team_state
CREATE INDEX "idx_activities_team_state"
    ON "activities" ("team", "state");
-- index idx_appointments_case_id_starts_at
CREATE INDEX "idx_appointments_case_id_starts_at"
    ON "appointments" ("case_id", "starts_at");
-- index idx_appointments_starts_at
CREATE INDEX "idx_appointments_starts_at"
    ON "appointments" ("starts_at");
-- index idx_attachments_block_id
CREATE INDEX "idx_attachments_block_id"
    ON "attachments" ("block_id");
-- index idx_attachments_case_id
CREATE INDEX "idx_attachments_case_id"
    ON "attachments" ("case_id");
-- index idx_blocks_case_id_name
CREATE UNIQUE INDEX "idx_blocks_case_id_name"
    ON "blocks" ("case_id", "name");
-- index idx_blocks_child_case_id
CREATE INDEX "idx_blocks_child_case_id"
    ON "blocks" ("child_case_id");
-- index idx_case_tags_tag_case_id
CREATE INDEX "idx_case_tags_tag_case_id"
    ON "case_tags" ("tag", "case_id");
-- index idx_cases_assignee
CREATE INDEX "idx_cases_assignee"
    ON "cases" ("assignee");
-- index idx_cases_assignee_status
CREATE INDEX "idx_cases_assignee_status"
    ON "cases" ("assignee", "status");
-- index idx_cases_created_at
CREATE INDEX "idx_cases_created_at"
    ON "cases" ("created_at");
-- index idx_cases_decided_at
CREATE INDEX "idx_cases_decided_at"
    ON "cases" ("decided_at");
-- index idx_cases_final
CREATE INDEX "idx_cases_final"
    ON "cases" ("final");
-- index idx_cases_final_assignee
CREATE INDEX "idx_cases_final_assignee"
    ON "cases" ("final", "assignee");
-- index idx_cases_final_decided_at
CREATE INDEX "idx_cases_final_decided_at"
    ON "cases" ("final", "decided_at");
-- index idx_cases_final_due_at
CREATE INDEX "idx_cases_final_due_at"
    ON "cases" ("final", "due_at");
-- index idx_cases_final_status
CREATE INDEX "idx_cases_final_status"
    ON "cases" ("final", "status");
-- index idx_cases_final_team
CREATE INDEX "idx_cases_final_team"
    ON "cases" ("final", "team");
-- index idx_cases_final_workflow
CREATE INDEX "idx_cases_final_workflow"
    ON "cases" ("final", "workflow");
-- index idx_cases_parent_id
CREATE INDEX "idx_cases_parent_id"
    ON "cases" ("parent_id");
-- index idx_cases_priority
CREATE INDEX "idx_cases_priority"
    ON "cases" ("priority");
-- index idx_cases_queue
CREATE INDEX idx_cases_queue ON cases (created_at) WHERE assignee IS NULL AND final = 0;
-- index idx_cases_ref
CREATE UNIQUE INDEX "idx_cases_ref"
    ON "cases" ("ref");
-- index idx_cases_status
CREATE INDEX "idx_cases_status"
    ON "cases" ("status");
-- index idx_cases_status_since
CREATE INDEX idx_cases_status_since ON cases (status, status_since);
-- index idx_cases_status_workflow
CREATE INDEX "idx_cases_status_workflow"
    ON "cases" ("status", "workflow");
-- index idx_cases_subject_id
CREATE INDEX "idx_cases_subject_id"
    ON "cases" ("subject_id");
-- index idx_cases_team
CREATE INDEX "idx_cases_team"
    ON "cases" ("team");
-- index idx_cases_workflow
CREATE INDEX "idx_cases_workflow"
    ON "cases" ("workflow");
-- index idx_events_at
CREATE INDEX "idx_events_at"
    ON "events" ("at");
-- index idx_events_case_id_id
CREATE INDEX "idx_events_case_id_id"
    ON "events" ("case_id", "id");
-- index idx_notes_case_id
CREATE INDEX "idx_notes_case_id"
    ON "notes" ("case_id");
-- index idx_outbox_case_id
CREATE INDEX "idx_outbox_case_id"
    ON "outbox" ("case_id");
-- index idx_outbox_status_next_attempt_at
CREATE INDEX "idx_outbox_status_next_attempt_at"
    ON "outbox" ("status", "next_attempt_at");
-- index idx_subjects_country
CREATE INDEX "idx_subjects_country"
    ON "subjects" ("country");
-- index idx_subjects_email_key
CREATE UNIQUE INDEX "idx_subjects_email_key"
    ON "subjects" ("email_key");
-- index idx_subjects_ref
CREATE UNIQUE INDEX "idx_subjects_ref"
    ON "subjects" ("ref");
-- table _migrations
CREATE TABLE "_migrations" (
   "name" TEXT PRIMARY KEY,
   "applied_at" TEXT
);
-- table activities
CREATE TABLE "activities" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "type" TEXT NOT NULL,
   "label" TEXT,
   "state" TEXT NOT NULL,
   "assignee" TEXT,
   "team" TEXT,
   "requirement" TEXT NOT NULL DEFAULT '{}',
   "result" TEXT NOT NULL DEFAULT '{}',
   "decision" TEXT,
   "decided_by" TEXT,
   "decided_at" TEXT,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL,
   "created_by" TEXT
);
-- table appointments
CREATE TABLE "appointments" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "starts_at" TEXT NOT NULL,
   "minutes" INTEGER NOT NULL,
   "title" TEXT NOT NULL,
   "with_whom" TEXT,
   "created_at" TEXT NOT NULL,
   "created_by" TEXT NOT NULL,
   "cancelled_at" TEXT,
   "cancel_reason" TEXT
);
-- table attachments
CREATE TABLE "attachments" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "block_id" INTEGER REFERENCES "blocks"("id"),
   "sha256" TEXT NOT NULL REFERENCES "documents"("sha256"),
   "filename" TEXT,
   "media_type" TEXT,
   "size" INTEGER NOT NULL,
   "created_at" TEXT NOT NULL,
   "created_by" TEXT
);
-- table blocks
CREATE TABLE "blocks" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "name" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "status" TEXT,
   "data" TEXT NOT NULL DEFAULT '{}',
   "child_case_id" INTEGER REFERENCES "cases"("id"),
   "decided_by" TEXT,
   "decided_at" TEXT,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL
);
-- table case_search
CREATE VIRTUAL TABLE case_search USING fts5(case_no, ref, name, email, dob, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
-- table case_search_config
CREATE TABLE 'case_search_config'(k PRIMARY KEY, v) WITHOUT ROWID;
-- table case_search_content
CREATE TABLE 'case_search_content'(id INTEGER PRIMARY KEY, c0, c1, c2, c3, c4);
-- table case_search_data
CREATE TABLE 'case_search_data'(id INTEGER PRIMARY KEY, block BLOB);
-- table case_search_deferred
CREATE TABLE case_search_deferred (id INTEGER PRIMARY KEY);
-- table case_search_docsize
CREATE TABLE 'case_search_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
-- table case_search_idx
CREATE TABLE 'case_search_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
-- table case_tags
CREATE TABLE "case_tags" (
   "case_id" INTEGER REFERENCES "cases"("id"),
   "tag" TEXT,
   PRIMARY KEY ("case_id", "tag")
);
-- table cases
CREATE TABLE "cases" (
   "id" INTEGER PRIMARY KEY,
   "ref" TEXT,
   "workflow" TEXT NOT NULL,
   "workflow_version" INTEGER NOT NULL,
   "status" TEXT NOT NULL,
   "final" INTEGER NOT NULL DEFAULT 0,
   "subject_id" INTEGER REFERENCES "subjects"("id"),
   "parent_id" INTEGER REFERENCES "cases"("id"),
   "data" TEXT NOT NULL DEFAULT '{}',
   "registry_data" TEXT NOT NULL DEFAULT '{}',
   "assignee" TEXT,
   "team" TEXT,
   "priority" TEXT NOT NULL DEFAULT 'normal',
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL,
   "due_at" TEXT,
   "decided_at" TEXT,
   "decision" TEXT,
   "decision_reason" TEXT,
   "origin" TEXT NOT NULL DEFAULT 'command',
   "created_by" TEXT,
   "last_editor" TEXT,
   "version" INTEGER NOT NULL DEFAULT 1
, "sla_paused_at" TEXT, "sla_remaining" INTEGER, "decided_by" TEXT, status_since TEXT);
-- table chain_heads
CREATE TABLE chain_heads (case_id INTEGER PRIMARY KEY, events INTEGER NOT NULL, last_event INTEGER NOT NULL, last_at TEXT NOT NULL, head TEXT NOT NULL, purged_at TEXT, mac TEXT NOT NULL);
-- table chain_seal
CREATE TABLE chain_seal (id INTEGER PRIMARY KEY CHECK (id = 1), last_case INTEGER NOT NULL, last_event INTEGER NOT NULL, mac TEXT NOT NULL);
-- table documents
CREATE TABLE "documents" ("sha256" TEXT PRIMARY KEY, "size" INTEGER NOT NULL, "media_type" TEXT, "created_at" TEXT NOT NULL, "content" BLOB NOT NULL);
-- table erasures
CREATE TABLE "erasures" (
   "id" INTEGER PRIMARY KEY,
   "at" TEXT NOT NULL,
   "actor" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "details" TEXT NOT NULL
);
-- table event_texts
CREATE TABLE event_texts (event_id INTEGER PRIMARY KEY REFERENCES events(id), fields TEXT NOT NULL, salt TEXT, body TEXT, erased_at TEXT);
-- table events
CREATE TABLE "events" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "at" TEXT NOT NULL,
   "actor" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "action" TEXT,
   "from_status" TEXT,
   "to_status" TEXT,
   "reason" TEXT,
   "data" TEXT NOT NULL DEFAULT '{}',
   "prev_hash" TEXT,
   "hash" TEXT NOT NULL
, "login" TEXT, "text_hash" TEXT);
-- table hooks
CREATE TABLE "hooks" (
   "id" INTEGER PRIMARY KEY,
   "url" TEXT NOT NULL,
   "event" TEXT NOT NULL,
   "workflow" TEXT,
   "secret_env" TEXT,
   "created_at" TEXT NOT NULL,
   "created_by" TEXT
);
-- table notes
CREATE TABLE "notes" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER NOT NULL REFERENCES "cases"("id"),
   "at" TEXT NOT NULL,
   "actor" TEXT NOT NULL,
   "text" TEXT NOT NULL,
   "private" INTEGER NOT NULL DEFAULT 0,
   "event_id" INTEGER REFERENCES "events"("id")
);
-- table outbox
CREATE TABLE "outbox" (
   "id" INTEGER PRIMARY KEY,
   "case_id" INTEGER REFERENCES "cases"("id"),
   "event_id" INTEGER REFERENCES "events"("id"),
   "kind" TEXT NOT NULL,
   "target" TEXT,
   "payload" TEXT NOT NULL,
   "status" TEXT NOT NULL DEFAULT 'pending',
   "attempts" INTEGER NOT NULL DEFAULT 0,
   "next_attempt_at" TEXT,
   "last_error" TEXT,
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL,
   "delivered_at" TEXT,
   "claimed_until" TEXT,
   "claimed_by" TEXT
);
-- table routine_runs
CREATE TABLE routine_runs (case_id INTEGER NOT NULL REFERENCES cases(id), routine TEXT NOT NULL, entered INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, event_id INTEGER, at TEXT NOT NULL, PRIMARY KEY (case_id, routine, entered));
-- table settings
CREATE TABLE "settings" (
   "key" TEXT PRIMARY KEY,
   "value" TEXT
);
-- table subjects
CREATE TABLE "subjects" (
   "id" INTEGER PRIMARY KEY,
   "ref" TEXT,
   "name" TEXT,
   "email" TEXT,
   "email_key" TEXT,
   "dob" TEXT,
   "country" TEXT,
   "entity_type" TEXT NOT NULL DEFAULT 'person',
   "data" TEXT NOT NULL DEFAULT '{}',
   "created_at" TEXT NOT NULL,
   "updated_at" TEXT NOT NULL,
   "redacted_at" TEXT
);
-- table users
CREATE TABLE users (name TEXT PRIMARY KEY, roles TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, created_by TEXT);
-- table views
CREATE TABLE "views" (
   "name" TEXT PRIMARY KEY,
   "filters" TEXT NOT NULL,
   "builtin" INTEGER DEFAULT 0,
   "created_at" TEXT NOT NULL,
   "created_by" TEXT
);
-- table workflows
CREATE TABLE "workflows" (
   "name" TEXT,
   "version" INTEGER,
   "definition" TEXT NOT NULL,
   "builtin" INTEGER DEFAULT 0,
   "created_at" TEXT NOT NULL,
   "created_by" TEXT,
   PRIMARY KEY ("name", "version")
);
-- trigger case_search_delete
CREATE TRIGGER case_search_delete AFTER DELETE ON cases BEGIN DELETE FROM case_search WHERE rowid = OLD.id; END;
-- trigger case_search_insert
CREATE TRIGGER case_search_insert AFTER INSERT ON cases WHEN NOT EXISTS (SELECT 1 FROM case_search_deferred) BEGIN INSERT INTO case_search (rowid, case_no, ref, name, email, dob) SELECT NEW.id, 'C-' || NEW.id, NEW.ref, s.name, s.email, s.dob FROM (SELECT 1) LEFT JOIN subjects s ON s.id = NEW.subject_id; END;
-- trigger case_search_subject
CREATE TRIGGER case_search_subject AFTER UPDATE OF name, email, dob ON subjects BEGIN DELETE FROM case_search WHERE rowid IN (SELECT id FROM cases WHERE subject_id = NEW.id); INSERT INTO case_search (rowid, case_no, ref, name, email, dob) SELECT c.id, 'C-' || c.id, c.ref, NEW.name, NEW.email, NEW.dob FROM cases c WHERE c.subject_id = NEW.id; END;
-- trigger case_search_update
CREATE TRIGGER case_search_update AFTER UPDATE OF ref, subject_id ON cases BEGIN DELETE FROM case_search WHERE rowid = OLD.id; INSERT INTO case_search (rowid, case_no, ref, name, email, dob) SELECT NEW.id, 'C-' || NEW.id, NEW.ref, s.name, s.email, s.dob FROM (SELECT 1) LEFT JOIN subjects s ON s.id = NEW.subject_id; END;
-- trigger cases_workflow_exists
CREATE TRIGGER cases_workflow_exists BEFORE INSERT ON cases WHEN NOT EXISTS (SELECT 1 FROM workflows WHERE name = NEW.workflow AND version = NEW.workflow_version) BEGIN SELECT RAISE(ABORT, 'unknown workflow version'); END;
-- trigger events_no_delete
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
-- trigger events_no_update
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
