"""The control tables: dbconfig, table_control, historical_metadata and the change history trigger.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE table_control_dbconfig (
    db_config_key   text PRIMARY KEY,
    db_type         text NOT NULL
        CONSTRAINT dbconfig_db_type_known
        CHECK (db_type IN ('sqlserver', 'oracle', 'postgresql', 'snowflake', 'clickhouse')),
    -- secret *names* (host, port, user, password, database, ...), never secret values
    db_config_value jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT dbconfig_value_is_object CHECK (jsonb_typeof(db_config_value) = 'object'),
    db_kv_scope     text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE table_control (
    config_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    control_key             text NOT NULL UNIQUE,
    db_config_key           text NOT NULL REFERENCES table_control_dbconfig (db_config_key),
    source_schema           text,
    source_table_name       text NOT NULL,
    destination_catalog     text NOT NULL DEFAULT 'bronze',
    destination_schema      text NOT NULL,
    destination_table_name  text NOT NULL,
    load_strategy           text NOT NULL,
    cron                    text NOT NULL,
    is_active               boolean NOT NULL DEFAULT true,
    next_load_date_time     timestamptz,
    last_status             text,
    last_status_date_time   timestamptz,
    last_load_date_time     timestamptz,
    last_status_message     text,
    current_run_id          text,
    incremental_column      text,
    incremental_type        text,
    incremental_value       text,
    primary_key_columns     text[] NOT NULL DEFAULT '{}',
    rolling_column          text,
    rolling_days            integer,
    chunk_size              bigint,
    chunk_interval_days     integer,
    retry_count             integer NOT NULL DEFAULT 0,
    airflow_run_url         text,
    databricks_run_url      text,
    rows_processed          bigint,
    staging_model_processed boolean NOT NULL DEFAULT false,
    sla_minutes             integer,
    alert_target            text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT load_strategy_known CHECK (load_strategy IN
        ('full', 'incremental', 'append_only', 'rolling', 'check_and_load', 'chunked_backfill')),
    CONSTRAINT last_status_known CHECK (last_status IN ('Queued', 'In Progress', 'Succeeded', 'Failed')),
    CONSTRAINT incremental_type_known CHECK (incremental_type IN ('timestamp', 'date', 'integer')),
    CONSTRAINT cursor_has_type CHECK ((incremental_column IS NULL) = (incremental_type IS NULL)),
    CONSTRAINT strategy_needs_cursor CHECK (
        load_strategy NOT IN ('incremental', 'append_only', 'check_and_load', 'chunked_backfill')
        OR incremental_column IS NOT NULL),
    -- check_and_load runs an incremental merge, and chunked_backfill becomes incremental when it
    -- finishes: both need the merge key as much as incremental does.
    CONSTRAINT strategy_needs_primary_key CHECK (
        load_strategy NOT IN ('incremental', 'rolling', 'check_and_load', 'chunked_backfill')
        OR cardinality(primary_key_columns) > 0),
    CONSTRAINT rolling_needs_window CHECK (
        load_strategy <> 'rolling' OR (rolling_column IS NOT NULL AND rolling_days > 0)),
    CONSTRAINT chunk_settings_positive CHECK (
        (chunk_size IS NULL OR chunk_size > 0) AND (chunk_interval_days IS NULL OR chunk_interval_days > 0)),
    CONSTRAINT sla_positive CHECK (sla_minutes IS NULL OR sla_minutes > 0),
    CONSTRAINT retry_count_not_negative CHECK (retry_count >= 0)
);

CREATE INDEX table_control_ready_idx ON table_control (next_load_date_time) WHERE is_active;
CREATE INDEX table_control_status_idx ON table_control (last_status, last_status_date_time);

CREATE TABLE historical_metadata (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    control_key      text NOT NULL,
    run_id           text NOT NULL,
    load_queued_time timestamptz,
    load_start_time  timestamptz,
    load_end_time    timestamptz,
    rows_processed   bigint,
    load_status      text NOT NULL
        CONSTRAINT load_status_known
        CHECK (load_status IN ('Queued', 'In Progress', 'Succeeded', 'Failed', 'Cancelled')),
    error_message    text,
    CONSTRAINT one_row_per_run UNIQUE (control_key, run_id)
);

CREATE TABLE table_control_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    control_key   text NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    change_type   text NOT NULL CHECK (change_type IN ('INSERT', 'UPDATE', 'DELETE')),
    change_source text NOT NULL,
    old_values    jsonb,
    new_values    jsonb
);
CREATE INDEX table_control_history_key_idx ON table_control_history (control_key, changed_at);

-- The later of two watermarks, compared as their cursor type (as text, '900' > '1000').
CREATE FUNCTION watermark_max(cursor_type text, current_value text, offered text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF offered IS NULL THEN RETURN current_value; END IF;
    IF current_value IS NULL THEN RETURN offered; END IF;
    IF cursor_type = 'integer' THEN
        RETURN CASE WHEN offered::numeric > current_value::numeric THEN offered ELSE current_value END;
    END IF;
    RETURN CASE WHEN offered::timestamptz > current_value::timestamptz THEN offered ELSE current_value END;
END $$;

CREATE FUNCTION table_control_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER table_control_touch BEFORE UPDATE ON table_control
    FOR EACH ROW EXECUTE FUNCTION table_control_touch();

-- One history row per changed control row. An UPDATE records only the columns that changed
-- (updated_at aside), and an UPDATE that changes nothing records nothing.
CREATE FUNCTION table_control_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    source  text := coalesce(nullif(current_setting('dataloader.change_source', true), ''),
                             nullif(current_setting('application_name', true), ''),
                             session_user);
    old_row jsonb;
    new_row jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO table_control_history (control_key, change_type, change_source, new_values)
        VALUES (NEW.control_key, TG_OP, source, to_jsonb(NEW));
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO table_control_history (control_key, change_type, change_source, old_values)
        VALUES (OLD.control_key, TG_OP, source, to_jsonb(OLD));
    ELSE
        SELECT jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, n.value)
          INTO old_row, new_row
          FROM jsonb_each(to_jsonb(OLD)) o
          JOIN jsonb_each(to_jsonb(NEW)) n USING (key)
         WHERE o.value IS DISTINCT FROM n.value AND o.key <> 'updated_at';
        IF old_row IS NOT NULL THEN
            INSERT INTO table_control_history (control_key, change_type, change_source, old_values, new_values)
            VALUES (NEW.control_key, TG_OP, source, old_row, new_row);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER table_control_audit AFTER INSERT OR UPDATE OR DELETE ON table_control
    FOR EACH ROW EXECUTE FUNCTION table_control_audit();
"""

DOWNGRADE = """
DROP TABLE IF EXISTS table_control_history;
DROP TABLE IF EXISTS historical_metadata;
DROP TABLE IF EXISTS table_control;
DROP TABLE IF EXISTS table_control_dbconfig;
DROP FUNCTION IF EXISTS table_control_audit();
DROP FUNCTION IF EXISTS table_control_touch();
DROP FUNCTION IF EXISTS watermark_max(text, text, text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
