"""Pure helpers at the value boundary: no I/O, no store, no HTTP client.

``hosts`` decides which destinations a value may travel to, ``placeholders`` finds and fills
``{{secrets.NAME}}`` templates, ``scrub`` replaces echoes of values in text and streams. They
are imported by validation, the store and the egress runtime alike, and are unit-tested in
isolation; nothing here opens a stored value.
"""
