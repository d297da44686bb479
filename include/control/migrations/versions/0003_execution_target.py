"""Where a table's load runs (per row; NULL means the environment's default), and a per-row limit for
the long-running monitor.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE table_control
            ADD COLUMN execution_target text
                CONSTRAINT execution_target_known CHECK (execution_target IN ('local', 'databricks')),
            ADD COLUMN max_running_minutes integer
                CONSTRAINT max_running_positive CHECK (max_running_minutes IS NULL OR max_running_minutes > 0)
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE table_control DROP COLUMN execution_target, DROP COLUMN max_running_minutes")
