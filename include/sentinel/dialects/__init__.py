"""Per-database SQL of the comparator: canonical row text, hashes, checksums, key ranges, literals."""
