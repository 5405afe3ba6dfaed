"""The shared core every stage builds on: the config and its settings, the results layout, the table
contracts, file writing, shards, crop codecs, video access, logs and provenance. It imports no stage."""
