"""The store's one error: it cannot be reached or used (the service answers 503)."""


class StoreUnavailableError(RuntimeError):
    """The online store cannot be reached or used; the message names it."""
