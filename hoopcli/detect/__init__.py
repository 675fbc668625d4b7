"""Detection (stage 8 of the data path): rules over many calls, evaluated on every record.

Pure and deterministic, shared by the server (which feeds it the ledger in log order and
stores what it raises) and `hoop policy test` (which feeds it a sample of commands):

    events.events_of(record, owner, label, received)   a transcript record -> Events
    rules.build(compiled_policy.get("detections"))      the rules in force (shipped + the policy's)
    engine.Engine(rules, memory).feed(event)            -> [Trigger] (sliding windows per scope)

docs/detections.md says what each shipped rule catches and what it misses.
"""
