"""Use cases: one function each, taking the connection, the actor and `now`."""
