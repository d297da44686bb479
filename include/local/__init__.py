"""The embedded local stack: a throwaway PostgreSQL and (later) the in-process Spark engine."""
