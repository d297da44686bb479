"""Late-arriving rows (lookback_minutes) and source deletes inside a rolling window.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE table_control
            ADD COLUMN lookback_minutes integer
                CONSTRAINT lookback_positive CHECK (lookback_minutes IS NULL OR lookback_minutes > 0),
            ADD COLUMN rolling_delete_missing boolean NOT NULL DEFAULT false
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE table_control DROP COLUMN lookback_minutes, DROP COLUMN rolling_delete_missing")
