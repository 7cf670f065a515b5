/**
 * The fleet's first schema: applications, packages, channels with floors and
 * blocklists, groups with their rollout policy, instances and their per-app
 * state, grants (one row per update handed out, the ledger the limits count),
 * status history, events, activity and API tokens. Every change to the
 * configuration tables is announced on the `fleet_config` channel, so that
 * every replica's cache follows whoever wrote it.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe(`
CREATE TABLE applications (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE packages (
  id bigserial PRIMARY KEY,
  app_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  version text NOT NULL,
  arch text NOT NULL,
  name text NOT NULL,
  size bigint NOT NULL CHECK (size >= 0),
  sha1 text NOT NULL,
  sha256 text NOT NULL,
  -- An external payload's URL; NULL for a payload hosted in the data directory.
  url text,
  -- update_engine's postinstall action.
  is_delta boolean NOT NULL DEFAULT false,
  needs_admin boolean NOT NULL DEFAULT false,
  disable_payload_backoff boolean NOT NULL DEFAULT true,
  metadata_signature_rsa text,
  metadata_size text,
  deadline text,
  chromeos_version text,
  extra_files jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (app_id, version, arch)
);

CREATE TABLE channels (
  id bigserial PRIMARY KEY,
  app_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  name text NOT NULL,
  arch text NOT NULL,
  color text NOT NULL DEFAULT '',
  package_id bigint REFERENCES packages (id) ON DELETE RESTRICT,
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (app_id, name, arch)
);

CREATE TABLE channel_floors (
  channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  package_id bigint NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
  reason text NOT NULL DEFAULT '',
  PRIMARY KEY (channel_id, package_id)
);

CREATE TABLE channel_blocklist (
  channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  package_id bigint NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
  PRIMARY KEY (channel_id, package_id)
);

CREATE TABLE groups (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  app_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  -- What machines send as app@track; a group is also found by its id.
  track text NOT NULL,
  -- A channel name: the channel of the machine's arch is used.
  channel text NOT NULL,
  updates_enabled boolean NOT NULL DEFAULT true,
  safe_mode boolean NOT NULL DEFAULT true,
  max_updates_per_period integer NOT NULL DEFAULT 2 CHECK (max_updates_per_period >= 0),
  max_concurrent_updates integer CHECK (max_concurrent_updates >= 0),
  period_seconds integer NOT NULL DEFAULT 900 CHECK (period_seconds > 0),
  update_timeout_seconds integer NOT NULL DEFAULT 3600 CHECK (update_timeout_seconds > 0),
  rollout_percent double precision NOT NULL DEFAULT 100 CHECK (rollout_percent >= 0 AND rollout_percent <= 100),
  allow_downgrade boolean NOT NULL DEFAULT false,
  failure_brake jsonb,
  windows jsonb NOT NULL DEFAULT '[]',
  paused boolean NOT NULL DEFAULT false,
  paused_reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (app_id, name),
  UNIQUE (app_id, track)
);

CREATE TABLE instances (
  id text PRIMARY KEY,
  alias text NOT NULL DEFAULT '',
  ip text NOT NULL DEFAULT '',
  oem text NOT NULL DEFAULT '',
  oem_version text NOT NULL DEFAULT '',
  aleph_version text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instances_last_seen ON instances (last_seen);

CREATE TABLE instance_apps (
  instance_id text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  app_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  group_id uuid REFERENCES groups (id) ON DELETE SET NULL,
  track text NOT NULL DEFAULT '',
  arch text NOT NULL DEFAULT '',
  version text NOT NULL DEFAULT '',
  status text NOT NULL DEFAULT 'undefined',
  -- Why the last check was held (a policy limit, the window, the brake), while it is.
  hold text,
  error_code integer,
  last_check timestamptz NOT NULL DEFAULT now(),
  last_grant timestamptz,
  granted_version text,
  grant_id bigint,
  PRIMARY KEY (instance_id, app_id)
);
CREATE INDEX instance_apps_group ON instance_apps (app_id, group_id, status);
CREATE INDEX instance_apps_version ON instance_apps (app_id, version);
CREATE INDEX instance_apps_last_check ON instance_apps (last_check);

-- One row per update handed out: the limits, safe mode and the failure brake
-- count these, inside the transaction that adds one.
CREATE TABLE grants (
  id bigserial PRIMARY KEY,
  group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  instance_id text NOT NULL,
  app_id text NOT NULL,
  version text NOT NULL,
  granted_at timestamptz NOT NULL,
  finished_at timestamptz,
  -- 'complete' or 'error' once finished.
  outcome text,
  error_code integer
);
CREATE INDEX grants_group_time ON grants (group_id, granted_at);
CREATE INDEX grants_instance ON grants (instance_id, app_id, granted_at);

CREATE TABLE instance_status_history (
  id bigserial PRIMARY KEY,
  instance_id text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  app_id text NOT NULL,
  group_id uuid,
  status text NOT NULL,
  version text NOT NULL DEFAULT '',
  error_code integer,
  created_at timestamptz NOT NULL
);
CREATE INDEX instance_status_history_instance ON instance_status_history (instance_id, app_id, created_at);
CREATE INDEX instance_status_history_time ON instance_status_history (created_at);

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  instance_id text NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
  app_id text NOT NULL,
  event_type integer NOT NULL,
  event_result integer NOT NULL,
  error_code integer,
  previous_version text,
  next_version text,
  created_at timestamptz NOT NULL
);
CREATE INDEX events_instance ON events (instance_id, app_id, created_at);
CREATE INDEX events_time ON events (created_at);

CREATE TABLE activity (
  id bigserial PRIMARY KEY,
  app_id text,
  group_id uuid,
  channel text,
  kind text NOT NULL,
  severity text NOT NULL DEFAULT 'info',
  version text,
  message text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX activity_time ON activity (created_at);

CREATE TABLE tokens (
  id bigserial PRIMARY KEY,
  -- SHA-256 (hex) of the token; the token itself is never stored.
  hash text NOT NULL UNIQUE,
  role text NOT NULL CHECK (role IN ('admin', 'viewer')),
  name text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used timestamptz
);

CREATE FUNCTION fleet_config_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('fleet_config', TG_TABLE_NAME);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER applications_changed AFTER INSERT OR UPDATE OR DELETE ON applications
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
CREATE TRIGGER packages_changed AFTER INSERT OR UPDATE OR DELETE ON packages
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
CREATE TRIGGER channels_changed AFTER INSERT OR UPDATE OR DELETE ON channels
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
CREATE TRIGGER channel_floors_changed AFTER INSERT OR UPDATE OR DELETE ON channel_floors
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
CREATE TRIGGER channel_blocklist_changed AFTER INSERT OR UPDATE OR DELETE ON channel_blocklist
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
CREATE TRIGGER groups_changed AFTER INSERT OR UPDATE OR DELETE ON groups
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_config_changed();
`))
