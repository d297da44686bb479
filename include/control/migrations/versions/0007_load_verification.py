"""Load verification: a control-row option that compares the source with its bronze table after a load,
and the result of that comparison on the run's ``historical_metadata`` row.

``verify`` needs a key to compare rows by; the CHECK mirrors the model's validation, which names the fix.
The result columns belong to the run, not the row: a verification changes neither the load's status nor
``table_control`` (whose every change writes a history row). ``verify_result`` holds the counts, a capped
list of differing keys and the report's path; the rows themselves are in the report.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE table_control
            ADD COLUMN verify boolean NOT NULL DEFAULT false,
            ADD CONSTRAINT verify_needs_primary_key CHECK (NOT verify OR cardinality(primary_key_columns) > 0)
        """
    )
    op.execute(
        """
        ALTER TABLE historical_metadata
            ADD COLUMN verify_status text
                CONSTRAINT verify_status_known CHECK (verify_status IN ('equal', 'mismatch')),
            ADD COLUMN verified_at timestamptz,
            ADD COLUMN verify_result jsonb
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE historical_metadata DROP COLUMN verify_status, DROP COLUMN verified_at, DROP COLUMN verify_result"
    )
    op.execute("ALTER TABLE table_control DROP CONSTRAINT verify_needs_primary_key, DROP COLUMN verify")
