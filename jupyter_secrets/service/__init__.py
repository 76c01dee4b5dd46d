"""The secrets service: the same runtime and REST API as a process of its own.

``jupyter secrets serve`` runs it as its own OS user (or container, or host), on PostgreSQL
for teams. It alone holds the master key and the database credentials; users' Jupyter
servers run in client mode and hold neither.
"""
