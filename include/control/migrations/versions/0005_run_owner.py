"""Who runs a load: host, process id, process start time and pid namespace of a `dataloader run`, and
its heartbeat, so that a run whose process is gone can be told apart from one that is still loading.

The owner columns default to session settings (``dataloader.run_host``, ``dataloader.run_pid``, ...)
that the CLI sets on its connections: the owner is recorded by the same statement that queues the run,
so no moment exists where a queued run has no known owner. Kept on ``historical_metadata`` (one row per
run), not on ``table_control``: a heartbeat would otherwise write a ``table_control_history`` row every
beat.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE historical_metadata
            ADD COLUMN run_host text
                DEFAULT nullif(current_setting('dataloader.run_host', true), ''),
            ADD COLUMN run_pid integer
                DEFAULT nullif(current_setting('dataloader.run_pid', true), '')::integer,
            ADD COLUMN run_process_started timestamptz
                DEFAULT nullif(current_setting('dataloader.run_process_started', true), '')::timestamptz,
            ADD COLUMN run_pid_namespace bigint
                DEFAULT nullif(current_setting('dataloader.run_pid_namespace', true), '')::bigint,
            ADD COLUMN heartbeat_at timestamptz
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE historical_metadata
            DROP COLUMN run_host, DROP COLUMN run_pid, DROP COLUMN run_process_started,
            DROP COLUMN run_pid_namespace, DROP COLUMN heartbeat_at
        """
    )
