"""Two workers racing for the same control row, on real concurrent connections."""

import threading

from include.control.repository import ControlRepository
from tests.control.helpers import add, execute

WORKERS = 8
ROUNDS = 10


def _race(control_url, action):
    barrier = threading.Barrier(WORKERS)
    results = [None] * WORKERS

    def worker(i):
        repo = ControlRepository(control_url, change_source=f"worker-{i}")
        barrier.wait()
        results[i] = action(repo, i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_exactly_one_of_many_workers_queues_a_row(repo, control_url):
    add(repo)
    for round_no in range(ROUNDS):
        results = _race(control_url, lambda r, i, n=round_no: r.queue("sales.orders", f"round{n}-worker{i}"))

        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        row = repo.get("sales.orders")
        assert row["current_run_id"] == winners[0]["current_run_id"]
        runs = [r for r in repo.runs("sales.orders") if r["run_id"].startswith(f"round{round_no}-")]
        assert [r["run_id"] for r in runs] == [winners[0]["current_run_id"]]

        repo.fail("sales.orders", row["current_run_id"], "reset for the next round")


def test_exactly_one_of_racing_finishers_wins(repo, control_url):
    """A load finishing while a monitor cancels it: one outcome, never both."""
    add(repo)
    for round_no in range(ROUNDS):
        run_id = f"run-{round_no}"
        repo.queue("sales.orders", run_id)
        repo.start("sales.orders", run_id)

        def finish(r, i, run_id=run_id):
            if i % 2:
                return r.succeed("sales.orders", run_id, rows_processed=i, watermark=None)
            return r.cancel("sales.orders", run_id, "Cancelled - exceeded timeout")

        winners = [r for r in _race(control_url, finish) if r is not None]
        assert len(winners) == 1
        [run] = [r for r in repo.runs("sales.orders") if r["run_id"] == run_id]
        assert run["load_status"] == ("Succeeded" if winners[0]["last_status"] == "Succeeded" else "Cancelled")


def test_exactly_one_of_many_runs_claims_a_free_row_and_the_others_wait(repo, control_url):
    """A backfill's runs starting in the same second: one claims the row, the others are told to wait."""
    from include.control.lifecycle import Lifecycle, RowBusy

    add(repo)
    for round_no in range(ROUNDS):

        def claim(r, i, n=round_no):
            try:
                return Lifecycle(r, "sales.orders", f"round{n}-run{i}", is_live=lambda run_id: True).queue()
            except RowBusy:
                return None

        winners = [r for r in _race(control_url, claim) if r is not None]
        assert len(winners) == 1
        row = repo.get("sales.orders")
        assert (row["last_status"], row["current_run_id"]) == ("Queued", winners[0]["current_run_id"])
        runs = [r["run_id"] for r in repo.runs("sales.orders") if r["run_id"].startswith(f"round{round_no}-")]
        assert runs == [winners[0]["current_run_id"]]

        repo.fail("sales.orders", row["current_run_id"], "reset for the next round")
        # the round's run has ended: the next round finds the row free
        execute(control_url, "UPDATE table_control SET last_status = 'Succeeded' WHERE control_key = 'sales.orders'")
