"""``mloop stream``: a consumer that scores an event stream with the champion, as the server does.

Events are read in micro-batches from a broker (``brokers/``), validated by the loaded version's request
model, scored by the same compiled path, logged to the same prediction log and written to a sink keyed
by request id. Reading is at-least-once (an event is acknowledged only after its answer, its dead
letter and its log row are stored) and every write is idempotent by request id, so a consumer killed at
any point and restarted leaves each answer in the sink exactly once.
"""
