"""revwallet's performance and resilience harness (`make bench`): stdlib only, so a fresh machine needs no pip."""
