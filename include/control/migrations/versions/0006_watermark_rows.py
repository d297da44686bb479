"""How many target rows a load left at the watermark, so that a wait outside the load (the
check_and_load sensor, which cannot read the Delta target) counts as the load reads (``>=``).

A row committed later with the watermark's very value is a change: the source then has more rows at
the watermark than the target. ``succeed`` records the target's count with the watermark it commits;
NULL (older rows, other strategies, a watermark set by hand) means "not known": only rows past the
watermark count, as before.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE table_control
            ADD COLUMN watermark_rows bigint
                CONSTRAINT watermark_rows_not_negative CHECK (watermark_rows IS NULL OR watermark_rows >= 0)
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE table_control DROP COLUMN watermark_rows")
