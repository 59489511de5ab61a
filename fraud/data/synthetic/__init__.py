"""The synthetic transaction generator: ``config`` (the ``data`` section), ``profiles`` (users
and their legitimate activity), ``merchants`` (merchants, users' own shops and the
compromised-merchant pattern), ``patterns`` (the other five injected fraud patterns) and
``generate`` (``generate_transactions``: plan, draw, assemble). One seeded generator, no loop
over rows. Private helpers are shared within this package only.
"""
