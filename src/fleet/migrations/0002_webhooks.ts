/**
 * Webhooks: where the fleet server tells of rollouts (started, finished,
 * braked) and failed machines. The secret signs each body (HMAC-SHA256) and
 * is therefore kept as it was given; the API never shows it. Every change
 * is announced on `fleet_webhooks`, so every replica delivers to the same
 * set.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql.unsafe(`
CREATE TABLE webhooks (
  id bigserial PRIMARY KEY,
  url text NOT NULL,
  secret text NOT NULL,
  -- The event kinds delivered, a JSON array of names.
  kinds jsonb NOT NULL,
  -- Only this application's events, when set.
  app_id text REFERENCES applications (id) ON DELETE CASCADE,
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE FUNCTION fleet_webhooks_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('fleet_webhooks', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER webhooks_changed AFTER INSERT OR UPDATE OR DELETE ON webhooks
  FOR EACH STATEMENT EXECUTE FUNCTION fleet_webhooks_changed();
`))
