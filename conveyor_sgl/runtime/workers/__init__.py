"""Tool worker processes: their messages and channel, the fork server, the pool, the runner."""
