"""The contract suite: one set of checks from schemas/ and fixtures/, run against any target."""
