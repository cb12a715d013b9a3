"""A clinic's CSV registry (visits, patients, safety events, exposure): reading and checking.

File I/O lives here, outside the pure statistics of ``follicle.response``.
"""

from follicle.registry.tables import read_events, read_exposure, read_patients, read_table, read_visits

__all__ = ["read_events", "read_exposure", "read_patients", "read_table", "read_visits"]
