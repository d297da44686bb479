"""The retry analyzer against a corpus of real error messages from the sources, Spark and Databricks."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from include.dataloader.monitors.analysis import LlmAnalyzer, RuleAnalyzer

CORPUS = [
    # Oracle
    ("ORA-12170: TNS:Connect timeout occurred", "RETRY"),
    ("oracledb.exceptions.OperationalError: DPY-6005: cannot connect to database. ORA-12541: TNS:no listener", "RETRY"),
    ("ORA-03113: end-of-file on communication channel\nProcess ID: 4711\nSession ID: 12 Serial number: 3", "RETRY"),
    ("ORA-03135: connection lost contact", "RETRY"),
    ("ORA-00060: deadlock detected while waiting for resource", "RETRY"),
    ("ORA-00054: resource busy and acquire with NOWAIT specified or timeout expired", "RETRY"),
    ("ORA-12514: TNS:listener does not currently know of service requested in connect descriptor", "RETRY"),
    ("ORA-01033: ORACLE initialization or shutdown in progress", "RETRY"),
    ("ORA-01017: invalid username/password; logon denied", "REVIEW"),
    ("ORA-28000: The account is locked.", "REVIEW"),
    ("ORA-00942: table or view does not exist", "REVIEW"),
    ('ORA-00904: "MODIFIED_DATE": invalid identifier', "REVIEW"),
    ("ORA-01031: insufficient privileges", "REVIEW"),
    ("ORA-00933: SQL command not properly ended", "REVIEW"),
    ("ORA-01722: invalid number", "REVIEW"),
    ("ORA-01652: unable to extend temp segment by 128 in tablespace TEMP", "REVIEW"),
    # SQL Server
    (
        "[Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: An existing connection was forcibly closed by the remote host.",
        "RETRY",
    ),
    (
        "com.microsoft.sqlserver.jdbc.SQLServerException: Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.",
        "RETRY",
    ),
    ("com.microsoft.sqlserver.jdbc.SQLServerException: Lock request time out period exceeded.", "RETRY"),
    ("com.microsoft.sqlserver.jdbc.SQLServerException: Login failed for user 'dataloader'.", "REVIEW"),
    ("com.microsoft.sqlserver.jdbc.SQLServerException: Invalid object name 'dbo.Orders'.", "REVIEW"),
    ("com.microsoft.sqlserver.jdbc.SQLServerException: Invalid column name 'ModifiedDate'.", "REVIEW"),
    (
        "com.microsoft.sqlserver.jdbc.SQLServerException: The SELECT permission was denied on the object 'Orders', database 'Sales', schema 'dbo'.",
        "REVIEW",
    ),
    ("com.microsoft.sqlserver.jdbc.SQLServerException: Incorrect syntax near 'FROM'.", "REVIEW"),
    (
        "com.microsoft.sqlserver.jdbc.SQLServerException: Conversion failed when converting date and/or time from character string.",
        "REVIEW",
    ),
    # PostgreSQL
    ('psycopg.OperationalError: connection to server at "10.0.0.5", port 5432 failed: Connection refused', "RETRY"),
    (
        "psycopg2.OperationalError: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
        "RETRY",
    ),
    ("FATAL: remaining connection slots are reserved for non-replication superuser connections", "RETRY"),
    ("FATAL: the database system is starting up", "RETRY"),
    (
        "SourceUnreachable: sales.orders: the source database (dbconfig pg, postgresql) could not be reached while "
        'reading public.orders: OperationalError: connection to server on socket "/run/.s.PGSQL.5432" failed: No such file',
        "RETRY",
    ),
    ("psycopg.errors.DeadlockDetected: deadlock detected", "RETRY"),
    ('FATAL: password authentication failed for user "loader"', "REVIEW"),
    ('psycopg.errors.UndefinedTable: relation "public.orders" does not exist', "REVIEW"),
    ("psycopg.errors.InsufficientPrivilege: permission denied for table orders", "REVIEW"),
    ('psycopg.errors.InvalidTextRepresentation: invalid input syntax for type integer: "abc"', "REVIEW"),
    # Snowflake
    (
        "250001 (08001): Failed to connect to DB: acme.snowflakecomputing.com:443. Incorrect username or password was specified.",
        "REVIEW",
    ),
    ("002003 (42S02): SQL compilation error: Object 'RAW.SALES.ORDERS' does not exist or not authorized.", "REVIEW"),
    (
        "000625 (57014): Statement reached its statement or warehouse timeout of 3600 second(s) and was canceled.",
        "REVIEW",
    ),
    ("psycopg.errors.QueryCanceled: canceling statement due to statement timeout", "REVIEW"),
    ("HTTP 429: Too Many Requests", "RETRY"),
    # ClickHouse
    ("Code: 60. DB::Exception: Table sales.orders does not exist. (UNKNOWN_TABLE)", "REVIEW"),
    (
        "Code: 516. DB::Exception: loader: Authentication failed: password is incorrect. (AUTHENTICATION_FAILED)",
        "REVIEW",
    ),
    ("Code: 210. DB::NetException: Connection refused (clickhouse:9000). (NETWORK_ERROR)", "RETRY"),
    ("Code: 202. DB::Exception: Too many simultaneous queries. Maximum: 100. (TOO_MANY_SIMULTANEOUS_QUERIES)", "RETRY"),
    # Spark, Delta and Databricks
    (
        "org.apache.spark.SparkException: Job aborted due to stage failure: ExecutorLostFailure (executor 3 exited caused by one of the running tasks)",
        "RETRY",
    ),
    (
        "io.delta.exceptions.ConcurrentAppendException: Files were added to the root of the table by a concurrent update.",
        "RETRY",
    ),
    (
        "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view `bronze`.`sales`.`orders` cannot be found.",
        "REVIEW",
    ),
    ("AnalysisException: [DELTA_FAILED_TO_MERGE_FIELDS] Failed to merge fields 'amount' and 'amount'", "REVIEW"),
    (
        "Job run failed with terminal state: {'life_cycle_state': 'INTERNAL_ERROR', 'result_state': 'FAILED', 'state_message': 'CLUSTER_START_FAILURE: Cluster 0101-abc terminated'}",
        "RETRY",
    ),
    (
        "databricks.sdk.errors.platform.TemporarilyUnavailable: TEMPORARILY_UNAVAILABLE: The service at /api/2.2/jobs/runs/submit is taking too long to process your request.",
        "RETRY",
    ),
    ("java.lang.OutOfMemoryError: Java heap space", "REVIEW"),
    # this loader's own errors
    (
        "SchemaChangeError: sales.orders: column 'amount' is string at the source but decimal(12,2) in bronze.sales.orders",
        "REVIEW",
    ),
    ("SourceTableNotFound: sales.orders: source table dbo.orders not found (or no columns visible)", "REVIEW"),
    (
        "SecretNotFound: dbconfig 'sales_mssql', field 'password': secret 'KV_PW' (scope 'env'): set the environment variable KV_PW",
        "REVIEW",
    ),
    ("Cancelled - stuck in queue", "RETRY"),
    ("Cancelled - exceeded timeout", "REVIEW"),
]


@pytest.mark.parametrize(("message", "expected"), CORPUS, ids=[m[:60] for m, _ in CORPUS])
def test_rules_decide_the_corpus(message, expected):
    decision = RuleAnalyzer().analyze(message)
    assert decision.action == expected, decision
    assert 0.5 <= decision.confidence <= 1


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 40
    assert {e for _, e in CORPUS} == {"RETRY", "REVIEW"}


@pytest.mark.parametrize(
    "message",
    [
        'NumberDoesNotFit: oracle table "SALES"."LEDGER", column \'ID\': the value 1E+30 does not fit '
        "decimal(38,10), the type a NUMBER declared without precision loads as (at most 28 integer digits); ...",
        # Spark's JDBC reader on Databricks, for the same value
        "org.apache.spark.SparkArithmeticException: [DECIMAL_PRECISION_EXCEEDS_MAX_PRECISION] Decimal precision "
        "41 exceeds max precision 38. SQLSTATE: 22003",
    ],
)
def test_an_unconstrained_number_too_wide_for_its_decimal_is_a_data_error_on_both_engines(message):
    decision = RuleAnalyzer().analyze(message)
    assert (decision.action, decision.confidence, decision.reason.split(":")[0]) == ("REVIEW", 0.8, "data_error")


def test_an_unknown_error_goes_to_a_person_with_low_confidence():
    decision = RuleAnalyzer().analyze("KeyError: 'x'")
    assert (decision.action, decision.confidence) == ("REVIEW", 0.5)


def test_earlier_markers_are_ignored():
    decision = RuleAnalyzer().analyze("[AI: Retry Recommended] [AI: Retry Recommended] ORA-12170: TNS:Connect timeout")
    assert decision.action == "RETRY"


class FakeOpenAI:
    """An OpenAI-compatible endpoint on 127.0.0.1 answering what the test tells it to."""

    def __init__(self, answer: str, status: int = 200):
        self.answer, self.status, self.requests = answer, status, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                owner.requests.append(
                    (self.path, dict(self.headers), json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                )
                body = json.dumps({"choices": [{"message": {"role": "assistant", "content": owner.answer}}]}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_llm_decides_when_it_answers_well():
    fake = FakeOpenAI('{"decision": "RETRY", "confidence": 0.9, "reason": "transient network error"}')
    try:
        decision = LlmAnalyzer(base_url=fake.url, api_key="sk-test", model="gpt-4o-mini").analyze("ORA-01017: x")
    finally:
        fake.close()
    assert (decision.action, decision.confidence, decision.analyzer) == ("RETRY", 0.9, "llm:gpt-4o-mini")
    [(path, headers, body)] = fake.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][1] == {"role": "user", "content": "ORA-01017: x"}


@pytest.mark.parametrize(("answer", "status"), [("not json", 200), ('{"decision": "MAYBE"}', 200), ("{}", 500)])
def test_the_rules_decide_when_the_llm_fails(answer, status):
    fake = FakeOpenAI(answer, status)
    try:
        decision = LlmAnalyzer(base_url=fake.url, api_key=None, model="m").analyze(
            "ORA-01017: invalid username/password"
        )
    finally:
        fake.close()
    assert (decision.action, decision.analyzer) == ("REVIEW", "rules")


def test_the_rules_decide_when_the_llm_is_unreachable():
    decision = LlmAnalyzer(base_url="http://127.0.0.1:9", api_key=None, model="m", timeout=2).analyze(
        "Connection reset by peer"
    )
    assert (decision.action, decision.analyzer) == ("RETRY", "rules")
