"""Outbound calls and the value index: where stored values are opened and used.

With :mod:`jupyter_secrets.crypto` this package is the value boundary: ``values.py`` is the
one routine that opens stored values by name, ``outbound.py`` puts them into requests and
scrubs every byte that comes back, ``redaction.py`` finds them in files and log lines, and
``transport.py`` pins DNS so a value only reaches an address that was checked. Everything
above this package (services' callers, handlers, apps) sees names and ciphertext only.
"""
