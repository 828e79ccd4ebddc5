"""The quality-vs-latency benchmark: runners for every runtime and the table that compares them."""
