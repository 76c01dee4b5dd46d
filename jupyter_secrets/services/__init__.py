"""Use cases with the rules: secrets, connections, audit, access, kernel tokens. No HTTP here."""
