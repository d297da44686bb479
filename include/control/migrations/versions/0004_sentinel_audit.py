"""DB Sentinel's audit events, when a comparison is configured to log them to the control database.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sentinel_audit (
            id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            session_id text NOT NULL,
            run_id     text,
            table_name text,
            event      text NOT NULL,
            event_time timestamptz NOT NULL DEFAULT now(),
            details    jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX sentinel_audit_session_idx ON sentinel_audit (session_id, id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE sentinel_audit")
